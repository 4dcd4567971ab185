#!/usr/bin/env bash
# kvs.sh: use kvs from a shell through its line protocol and nc.
#
#   examples/kvs.sh get KEY
#   examples/kvs.sh create KEY BODY      (or: ... create KEY < file)
#   examples/kvs.sh update KEY BODY
#   examples/kvs.sh delete KEY
#
# Options before the command: -h HOST (default 127.0.0.1), -p PORT (default 9001).
# Prints the reply (values come back with \n, \r and \\ escaped, so they fit on one line; add -r
# to print them raw). Exit status: 0 on success, 1 for an error reply (printed to stderr), 2 for
# bad usage or no connection.
set -euo pipefail

host=127.0.0.1
port=9001
raw=false
while getopts "h:p:r" opt; do
  case $opt in
    h) host=$OPTARG ;;
    p) port=$OPTARG ;;
    r) raw=true ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
command -v nc >/dev/null || { echo "kvs.sh: nc is required (apt-get install netcat-openbsd)" >&2; exit 2; }

# Escapes a value for the line protocol: backslash, line breaks and the field separator.
escape() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//|/\\|}
  printf '%s' "$s"
}

# Reverses the escaping of a reply value.
unescape() {
  python3 -c 'import sys
s = sys.stdin.read().rstrip("\n"); out = []; i = 0
while i < len(s):
    if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in "nr\\|":
        out.append({"n": "\n", "r": "\r", "\\": "\\", "|": "|"}[s[i + 1]]); i += 2
    else:
        out.append(s[i]); i += 1
sys.stdout.write("".join(out))'
}

cmd=${1:-}
key=${2:-}
case $cmd in
  get | delete)
    [ $# -eq 2 ] || usage
    request="cmd=$cmd | key=$(escape "$key")"
    ;;
  create | update)
    [ $# -eq 2 ] || [ $# -eq 3 ] || usage
    if [ $# -eq 3 ]; then body=$3; else body=$(cat); fi
    request="cmd=$cmd | key=$(escape "$key") | body=$(escape "$body")"
    ;;
  *) usage ;;
esac

# One request, then stop, so the server closes the connection and nc exits.
if ! out=$(printf '%s\ncmd=stop\n' "$request" | nc "$host" "$port"); then
  echo "kvs.sh: cannot reach kvs at $host:$port" >&2
  exit 2
fi
reply=${out%%$'\n'*}
[ -n "$reply" ] || { echo "kvs.sh: no reply from $host:$port" >&2; exit 2; }
if [[ $reply == '{"error":'*'"errorcode":'* ]]; then
  echo "$reply" >&2
  exit 1
fi
if $raw; then printf '%s' "$reply" | unescape; echo; else echo "$reply"; fi
