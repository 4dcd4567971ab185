//! Glob-style patterns as Redis matches them (KEYS, SCAN MATCH, CONFIG GET): `*` any run, `?` any
//! byte, `[abc]`, `[^a]`, `[a-z]` classes, and `\` to escape the next byte.

/// Whether `text` matches `pattern`, optionally ignoring ASCII case.
pub fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index it now covers up to).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pattern, p, text[t], nocase),
            Some(b'\\') if p + 1 < pattern.len() => eq(pattern[p + 1], text[t]).then_some(p + 2),
            Some(&c) => eq(c, text[t]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((after, covered))) => {
                // Let the last `*` swallow one more byte and retry from there.
                p = after;
                t = covered + 1;
                star = Some((after, covered + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches a `[...]` class starting at `pattern[start]` against `c`; where the pattern goes on.
fn class(pattern: &[u8], start: usize, c: u8, nocase: bool) -> Option<usize> {
    let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    let c = fold(c);
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    loop {
        match pattern.get(i) {
            // An unterminated class ends at the end of the pattern, as in Redis.
            None => break,
            Some(b']') => {
                i += 1;
                break;
            }
            Some(b'\\') if i + 1 < pattern.len() => {
                matched |= fold(pattern[i + 1]) == c;
                i += 2;
            }
            Some(&lo)
                if pattern.get(i + 1) == Some(&b'-')
                    && i + 2 < pattern.len()
                    && pattern[i + 2] != b']' =>
            {
                let (mut a, mut b) = (fold(lo), fold(pattern[i + 2]));
                if a > b {
                    std::mem::swap(&mut a, &mut b);
                }
                matched |= (a..=b).contains(&c);
                i += 3;
            }
            Some(&x) => {
                matched |= fold(x) == c;
                i += 1;
            }
        }
    }
    (matched != negate).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_examples() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes(), false);
        assert!(m("h?llo", "hello") && m("h?llo", "hallo") && !m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo") && m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hello") && !m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo") && !m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo") && !m("h[a-b]llo", "hcllo"));
        assert!(m("*", "") && m("*", "anything") && m("a*b*c", "aXXbYYc") && !m("a*b*c", "aXXbYY"));
        assert!(m("h\\*llo", "h*llo") && !m("h\\*llo", "hello"));
        assert!(m("*maxclients*", "maxclients") && !m("max", "maxclients"));
        assert!(glob_match(b"HeLLo", b"hello", true) && !glob_match(b"HeLLo", b"hello", false));
    }
}
