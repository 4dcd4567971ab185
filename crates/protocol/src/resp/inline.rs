//! Splitting an inline command line into arguments, as redis-cli and Redis do (`sdssplitargs`):
//! whitespace separates arguments; `"..."` allows `\n \r \t \b \a \xHH` and `\<any>` escapes;
//! `'...'` is literal except `\'`. A closing quote must be followed by whitespace or the end.

use super::ProtocolError;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The arguments of one inline line.
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Ok(args);
        }
        let mut arg = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let Some(&c) = line.get(i) else {
                if in_double || in_single {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                break;
            };
            if in_double {
                match c {
                    b'\\'
                        if i + 3 < line.len()
                            && line[i + 1] == b'x'
                            && hex(line[i + 2]).is_some()
                            && hex(line[i + 3]).is_some() =>
                    {
                        let hi = hex(line[i + 2]).unwrap_or(0);
                        let lo = hex(line[i + 3]).unwrap_or(0);
                        arg.push(hi << 4 | lo);
                        i += 3;
                    }
                    b'\\' if i + 1 < line.len() => {
                        i += 1;
                        arg.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                    }
                    b'"' => {
                        if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                        i += 1;
                        break;
                    }
                    other => arg.push(other),
                }
            } else if in_single {
                match c {
                    b'\\' if line.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        arg.push(b'\'');
                    }
                    b'\'' => {
                        if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                        i += 1;
                        break;
                    }
                    other => arg.push(other),
                }
            } else {
                match c {
                    c if is_space(c) => {
                        i += 1;
                        break;
                    }
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    other => arg.push(other),
                }
            }
            i += 1;
        }
        args.push(arg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Result<Vec<String>, ProtocolError> {
        split_args(s.as_bytes()).map(|a| {
            a.into_iter()
                .map(|x| String::from_utf8_lossy(&x).into_owned())
                .collect()
        })
    }

    #[test]
    fn splits_on_whitespace() {
        assert_eq!(
            split("  SET  k\tv ").ok(),
            Some(vec!["SET".into(), "k".into(), "v".into()])
        );
        assert_eq!(split("").ok(), Some(vec![]));
        assert_eq!(split("   ").ok(), Some(vec![]));
    }

    #[test]
    fn double_quotes_take_escapes() {
        assert_eq!(
            split(r#"set "a b" "x\ny\x41\"""#).ok(),
            Some(vec!["set".into(), "a b".into(), "x\nyA\"".into()])
        );
        assert_eq!(split(r#""""#).ok(), Some(vec![String::new()]));
        // An unknown or incomplete \x escape is kept literally.
        assert_eq!(split(r#""\xZZ""#).ok(), Some(vec!["xZZ".into()]));
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(
            split(r"'a\nb' 'it\'s'").ok(),
            Some(vec![r"a\nb".into(), "it's".into()])
        );
    }

    #[test]
    fn unbalanced_quotes_are_errors() {
        for bad in [r#""open"#, "'open", r#""a"b"#, "'a'b"] {
            assert_eq!(split(bad), Err(ProtocolError::UnbalancedQuotes), "{bad}");
        }
    }
}
