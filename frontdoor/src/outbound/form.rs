//! `application/x-www-form-urlencoded` bodies and HTTP basic credentials, as OAuth 2.0 uses them
//! at a token endpoint (RFC 6749 section 2.3.1: the client id and secret are form-encoded first,
//! then joined by `:` and put in base64).

/// `fields` as a form body, in the given order.
pub fn encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        escape(name, &mut out);
        out.push('=');
        escape(value, &mut out);
    }
    out
}

/// Appends `text` form-encoded: letters, digits and `*-._` as they are, space as `+`, every
/// other byte as `%XX`.
fn escape(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

/// The `Authorization` value for a client `id` and `secret`.
pub fn basic(id: &str, secret: &str) -> String {
    let mut joined = String::new();
    escape(id, &mut joined);
    joined.push(':');
    escape(secret, &mut joined);
    format!("Basic {}", base64(joined.as_bytes()))
}

/// Standard base64 with padding (RFC 4648 section 4), as basic credentials are written.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_form_encoded_in_order() {
        let body = encode(&[
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://a.lan/.baton/auth/callback?x=1&y"),
            ("code", "a b+c/é"),
        ]);
        assert_eq!(
            body,
            "grant_type=authorization_code\
             &redirect_uri=https%3A%2F%2Fa.lan%2F.baton%2Fauth%2Fcallback%3Fx%3D1%26y\
             &code=a+b%2Bc%2F%C3%A9"
        );
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn basic_credentials_encode_the_parts_first() {
        // RFC 7617's example, and a secret with characters RFC 6749 makes us escape.
        assert_eq!(
            basic("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuK3Nlc2FtZQ=="
        );
        assert_eq!(basic("a", "b"), "Basic YTpi");
        assert_eq!(
            basic("id", "s:c%"),
            format!("Basic {}", base64(b"id:s%3Ac%25"))
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
