//! `kvs shell`: an interactive Redis-protocol shell with history and line editing, for people at
//! a terminal. Lines are split like redis-cli splits them (quotes, `\x41` escapes) and replies
//! are shown the way redis-cli shows them. Reads commands from a pipe as well.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

use clap::Args;
use kvs_protocol::resp::{Frame, read_frame, split_args};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// Address of the kvs Redis-protocol listener.
    #[arg(long, env = "KVS_RESP_ADDR", default_value = "127.0.0.1:6379")]
    resp: String,
    /// Authenticate as this ACL user (AUTH user password).
    #[arg(long, env = "KVS_USER")]
    user: Option<String>,
    /// The password. Prefer KVS_PASSWORD or the prompt (asked for when --user is given without a
    /// password, at a terminal): a flag shows in `ps`.
    #[arg(long, env = "KVS_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

/// Runs the shell until `quit`, `exit`, end of input, or a lost connection.
pub fn run(args: ShellArgs) -> ExitCode {
    let mut conn = match TcpStream::connect(&args.resp) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kvs: cannot reach kvs at {}: {e}", args.resp);
            return ExitCode::from(3);
        }
    };
    let credentials =
        match crate::client::credentials(args.user.as_deref(), args.password.as_deref()) {
            Ok(c) => c,
            Err(crate::client::Failure(code, why)) => {
                eprintln!("kvs: {why}");
                return ExitCode::from(code);
            }
        };
    if let Some((user, password)) = credentials {
        let mut words = vec![b"AUTH".to_vec()];
        words.extend(user.map(String::into_bytes));
        words.push(password.into_bytes());
        match call(&mut conn, &words, &mut Vec::new()) {
            Ok(Frame::Simple(_)) => {}
            Ok(frame) => {
                eprintln!("kvs: {}", show(&frame, 0));
                return ExitCode::from(3);
            }
            Err(e) => {
                eprintln!("kvs: connection to {} lost: {e}", args.resp);
                return ExitCode::from(3);
            }
        }
    }
    let mut editor = match DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("kvs: cannot start the line editor: {e}");
            return ExitCode::from(3);
        }
    };
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".kvs_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let prompt = format!("{}> ", args.resp);
    let mut buffer = Vec::new();
    let code = loop {
        let line = match editor.readline(&prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => break ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kvs: {e}");
                break ExitCode::from(3);
            }
        };
        let words = match split_args(line.as_bytes()) {
            Ok(w) if w.is_empty() => continue,
            Ok(w) => w,
            Err(_) => {
                println!("Invalid argument(s)");
                continue;
            }
        };
        let _ = editor.add_history_entry(line.as_str());
        let quitting = matches!(words[0].to_ascii_lowercase().as_slice(), b"quit" | b"exit");
        if quitting && words[0].eq_ignore_ascii_case(b"exit") {
            break ExitCode::SUCCESS;
        }
        match call(&mut conn, &words, &mut buffer) {
            Ok(frame) => println!("{}", show(&frame, 0)),
            Err(e) => {
                eprintln!("kvs: connection to {} lost: {e}", args.resp);
                break ExitCode::from(3);
            }
        }
        if quitting {
            break ExitCode::SUCCESS;
        }
    };
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    code
}

/// Sends one request and reads its reply.
fn call(conn: &mut TcpStream, words: &[Vec<u8>], buffer: &mut Vec<u8>) -> std::io::Result<Frame> {
    let mut request = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        request.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
        request.extend_from_slice(w);
        request.extend_from_slice(b"\r\n");
    }
    conn.write_all(&request)?;
    loop {
        match read_frame(buffer) {
            Ok(Some((frame, used))) => {
                buffer.drain(..used);
                return Ok(frame);
            }
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// Bytes in double quotes, escaped as redis-cli escapes them.
fn quoted(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

/// A reply as redis-cli shows it; `indent` is the width of the enclosing item numbers.
pub(crate) fn show(frame: &Frame, indent: usize) -> String {
    let items = |items: &[Frame], marker: &str| {
        if items.is_empty() {
            return "(empty array)".to_owned();
        }
        let width = items.len().to_string().len();
        items
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let pad = if i == 0 {
                    String::new()
                } else {
                    " ".repeat(indent)
                };
                format!(
                    "{pad}{:>width$}{marker} {}",
                    i + 1,
                    show(f, indent + width + marker.len() + 1)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    match frame {
        Frame::Simple(s) => s.clone(),
        Frame::Error(e) => format!("(error) {e}"),
        Frame::Integer(n) => format!("(integer) {n}"),
        Frame::Bulk(b) => quoted(b),
        Frame::Null | Frame::NullArray => "(nil)".to_owned(),
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) | Frame::Many(v) => items(v, ")"),
        Frame::Pairs(pairs) | Frame::Grouped(pairs) => {
            let flat: Vec<Frame> = pairs
                .iter()
                .map(|(k, v)| Frame::Array(vec![k.clone(), v.clone()]))
                .collect();
            items(&flat, ")")
        }
        Frame::Map(pairs) => {
            if pairs.is_empty() {
                return "(empty hash)".to_owned();
            }
            let width = pairs.len().to_string().len();
            pairs
                .iter()
                .enumerate()
                .map(|(i, (k, v))| {
                    let pad = if i == 0 {
                        String::new()
                    } else {
                        " ".repeat(indent)
                    };
                    format!(
                        "{pad}{:>width$}# {} => {}",
                        i + 1,
                        show(k, 0),
                        show(v, indent + width + 2)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        Frame::Double(d) => format!("(double) {d}"),
        Frame::Boolean(b) => format!("({b})"),
        Frame::Verbatim { text, .. } => String::from_utf8_lossy(text).into_owned(),
        Frame::BigNumber(n) => format!("(big number) {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn replies_look_like_redis_cli() {
        assert_eq!(show(&Frame::Integer(3), 0), "(integer) 3");
        assert_eq!(show(&Frame::Null, 0), "(nil)");
        assert_eq!(
            show(&Frame::Bulk(Bytes::from_static(b"a\"b\x01")), 0),
            "\"a\\\"b\\x01\""
        );
        let arr = Frame::Array(vec![
            Frame::bulk("x"),
            Frame::Array(vec![Frame::Integer(1), Frame::Null]),
        ]);
        assert_eq!(show(&arr, 0), "1) \"x\"\n2) 1) (integer) 1\n   2) (nil)");
        assert_eq!(show(&Frame::Array(vec![]), 0), "(empty array)");
        assert_eq!(
            show(&Frame::Error("ERR boom".into()), 0),
            "(error) ERR boom"
        );
    }
}
