//! Java `.properties` text, as `java.util.Properties.load` reads it, and the `--override key=value`
//! flags of the command line: the raw (key, value) pairs the broker configuration is built from.

use anyhow::{bail, Context};

/// Splits one `--override` argument `key=value`.
pub(crate) fn parse_override(kv: &str) -> anyhow::Result<(String, String)> {
    match kv.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => bail!("--override needs key=value, got '{kv}'"),
    }
}

/// Properties files are UTF-8 in practice; Java reads them as ISO-8859-1, so fall back to that.
pub(crate) fn decode_properties_bytes(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().into_iter().map(char::from).collect(),
    }
}

/// Parses Java `.properties` text into (key, value) pairs in file order, as
/// `java.util.Properties.load` does: `#`/`!` comment lines, `key=value`, `key: value` or
/// `key value`, a backslash at the end of a line continues it (leading whitespace of the next line
/// is dropped), and escapes `\t \n \r \f \uXXXX \<char>`. Values keep trailing whitespace (typed
/// values are trimmed when parsed). An empty key or a malformed `\u` escape is an error.
pub(crate) fn parse_properties(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let is_ws = |c: char| c == ' ' || c == '\t' || c == '\x0c';
    let natural: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < natural.len() {
        let start_line = i + 1;
        let first = natural[i].trim_start_matches(is_ws);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = String::new();
        let mut piece = first;
        loop {
            let trailing = piece.len() - piece.trim_end_matches('\\').len();
            if trailing % 2 == 1 {
                logical.push_str(&piece[..piece.len() - 1]);
                if i >= natural.len() {
                    break;
                }
                piece = natural[i].trim_start_matches(is_ws);
                i += 1;
            } else {
                logical.push_str(piece);
                break;
            }
        }
        // Split the raw logical line into key and value at the first unescaped separator.
        let chars: Vec<char> = logical.chars().collect();
        let mut k = 0;
        let mut escaped = false;
        while k < chars.len() {
            let ch = chars[k];
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '=' || ch == ':' || is_ws(ch) {
                break;
            }
            k += 1;
        }
        let raw_key: String = chars[..k].iter().collect();
        let mut v = k;
        while v < chars.len() && is_ws(chars[v]) {
            v += 1;
        }
        if v < chars.len() && (chars[v] == '=' || chars[v] == ':') {
            v += 1;
            while v < chars.len() && is_ws(chars[v]) {
                v += 1;
            }
        }
        let raw_value: String = chars[v..].iter().collect();
        let key = unescape(&raw_key).with_context(|| format!("line {start_line}"))?;
        let value = unescape(&raw_value).with_context(|| format!("line {start_line}"))?;
        if key.is_empty() {
            bail!("line {start_line}: missing key before the separator in '{logical}'");
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Resolves Java properties escapes.
fn unescape(raw: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = if hex.len() == 4 {
                    u32::from_str_radix(&hex, 16).ok()
                } else {
                    None
                };
                match code.and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => bail!("malformed \\uxxxx escape '\\u{hex}'"),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_syntax() {
        let text = "# comment\n\
                    ! also a comment\n\
                    \n   \t\n\
                    a=1\n\
                    b : 2\n\
                    c 3\n\
                    \x20\x20d\t=\t4  \n\
                    e\\:x=5\n\
                    long = one,\\\n      two,\\\n\t three\n\
                    empty\n\
                    uni=caf\\u00e9\\tx\n\
                    bs=C:\\\\data\\\\\n\
                    # trailing comment \\\n\
                    after=ok\r\n\
                    a=again\n";
        let kv = parse_properties(text).unwrap();
        let get = |k: &str| {
            kv.iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("a"), Some("again"));
        assert_eq!(get("b"), Some("2"));
        assert_eq!(get("c"), Some("3"));
        assert_eq!(get("d"), Some("4  "));
        assert_eq!(get("e:x"), Some("5"));
        assert_eq!(get("long"), Some("one,two,three"));
        assert_eq!(get("empty"), Some(""));
        assert_eq!(get("uni"), Some("café\tx"));
        assert_eq!(get("bs"), Some("C:\\data\\"));
        assert_eq!(get("after"), Some("ok"));
        assert_eq!(kv.len(), 11);
    }

    #[test]
    fn properties_errors() {
        assert!(
            format!("{:#}", parse_properties("x=1\n=novalue\n").unwrap_err()).contains("line 2")
        );
        assert!(format!("{:#}", parse_properties("x=\\u12\n").unwrap_err()).contains("malformed"));
        // A continuation at the end of the text just ends the line.
        assert_eq!(
            parse_properties("x=1\\").unwrap(),
            vec![("x".to_string(), "1".to_string())]
        );
    }
}
