//! Query strings and form bodies (`application/x-www-form-urlencoded`): the authorization
//! URL's parameters, and the callback's query read back, with bounds left to the caller.

/// `application/x-www-form-urlencoded` of `params` (also a URL's query).
pub fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes all but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The pairs of a query (`+` is a space, `%XX` a byte); `None` for a bad escape or text that
/// is not UTF-8.
pub fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    let decode = |s: &str| -> Option<String> {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).ok()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_round_trip_and_bad_escapes_are_refused() {
        let text = form(&[("a b", "c&d=é"), ("x", "")]);
        assert_eq!(text, "a%20b=c%26d%3D%C3%A9&x=");
        let back = parse_query(&text).expect("parses");
        assert_eq!(
            back,
            vec![("a b".into(), "c&d=é".into()), ("x".into(), String::new())]
        );
        assert_eq!(
            parse_query("a=1+2").expect("parses"),
            vec![("a".into(), "1 2".into())]
        );
        for bad in ["a=%", "a=%zz", "a=%ff"] {
            assert_eq!(parse_query(bad), None, "{bad}");
        }
    }
}
