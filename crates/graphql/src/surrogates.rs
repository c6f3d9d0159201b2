//! Python's `json.dumps` (used by infrahub-sdk to inline values into documents) writes
//! characters outside the Basic Multilingual Plane as UTF-16 surrogate pairs
//! (`\ud83d\ude80`). GraphQL string literals allow only scalar values in `\uXXXX`, so the
//! parser refuses them; this rewrites each escaped pair inside a (non-block) string literal to
//! the character itself before parsing.

use std::borrow::Cow;

fn hex4(s: &[u8]) -> Option<u16> {
    if s.len() < 4 {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(&s[..4]).ok()?, 16).ok()
}

/// Replaces escaped UTF-16 surrogate pairs in string literals of `query` by their character.
pub fn decode_surrogate_pairs(query: &str) -> Cow<'_, str> {
    if !query.contains("\\u") && !query.contains("\\U") {
        return Cow::Borrowed(query);
    }
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let (mut i, mut copied) = (0, 0);
    let (mut in_string, mut in_block) = (false, false);
    while i < b.len() {
        if in_block {
            if b[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if b[i..].starts_with(b"\"\"\"") {
                in_block = false;
                i += 3;
            } else {
                i += 1;
            }
            continue;
        }
        if !in_string {
            if b[i..].starts_with(b"\"\"\"") {
                in_block = true;
                i += 3;
            } else if b[i] == b'#' {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else {
                if b[i] == b'"' {
                    in_string = true;
                }
                i += 1;
            }
            continue;
        }
        match b[i] {
            b'"' | b'\n' => {
                in_string = false;
                i += 1;
            }
            b'\\' if matches!(b.get(i + 1), Some(b'u' | b'U')) => {
                let pair = hex4(&b[i + 2..]).zip(
                    (b.get(i + 6) == Some(&b'\\') && matches!(b.get(i + 7), Some(b'u' | b'U')))
                        .then(|| hex4(&b[i + 8..]))
                        .flatten(),
                );
                match pair {
                    Some((hi @ 0xD800..=0xDBFF, lo @ 0xDC00..=0xDFFF)) => {
                        let c =
                            0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                        out.push_str(&query[copied..i]);
                        out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                        i += 12;
                        copied = i;
                    }
                    _ => i += 2,
                }
            }
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(query);
    }
    out.push_str(&query[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::decode_surrogate_pairs as d;

    #[test]
    fn pairs_in_strings_become_characters() {
        assert_eq!(
            d(r#"{ a(x: "rocket \ud83d\ude80 end") }"#),
            "{ a(x: \"rocket \u{1F680} end\") }"
        );
    }

    #[test]
    fn other_escapes_and_block_strings_are_untouched() {
        for q in [
            r#"{ a(x: "\u00e9 \\ud83d\\ude80") }"#,
            "{ a(x: \"\"\"\\ud83d\\ude80\"\"\") }",
            "{ a }",
        ] {
            assert_eq!(d(q), q);
        }
    }
}
