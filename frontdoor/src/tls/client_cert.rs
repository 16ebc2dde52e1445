//! Who a verified client certificate names (docs/design/front-door.md section 5.5): its
//! subject as an RFC 4514 string (the user) and its first rfc822Name SAN (the email). The
//! handshake verified the chain already; this only reads the leaf.
//!
//! The string is ASCII: besides RFC 4514's own escapes, every byte outside visible ASCII is
//! written as `\XX` (RFC 4514 section 2.4 allows any character as a hex pair), so the result
//! always fits a header value and reads the same as `openssl x509 -nameopt RFC2253` prints it.

use x509_parser::asn1_rs::ToDer as _;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Bytes of a subject string, at most; a longer one is refused (a header must stay small).
pub const MAX_SUBJECT: usize = 1024;
/// Bytes of an email, at most; a longer one is left out.
pub const MAX_EMAIL: usize = 320;

/// What a TLS connection says about its client: the name it asked for and its certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The SNI name, lowercase, no final dot.
    pub sni: Option<String>,
    /// The verified client certificate, read ([`read`]); `None` when the client sent none.
    pub cert: Option<Result<ClientCert, String>>,
}

/// What the front door takes from a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject DN, RFC 4514.
    pub subject: String,
    /// The first rfc822Name of the subject alternative names, when it is plain ASCII.
    pub email: Option<String>,
}

/// Reads the leaf `der`; the error says why it cannot name a user.
pub fn read(der: &[u8]) -> Result<ClientCert, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("the certificate: {e}"))?;
    let subject = rfc4514(cert.subject())?;
    if subject.is_empty() {
        return Err("the certificate's subject is empty".into());
    }
    if subject.len() > MAX_SUBJECT {
        return Err(format!(
            "the certificate's subject is longer than {MAX_SUBJECT} bytes"
        ));
    }
    let email = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                GeneralName::RFC822Name(e) => Some(*e),
                _ => None,
            })
        })
        .filter(|e| {
            !e.is_empty() && e.len() <= MAX_EMAIL && e.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_string);
    Ok(ClientCert { subject, email })
}

/// The RFC 4514 string of `name`: its RDNs in reverse order joined by `,`, the attributes of
/// one RDN joined by `+` (a set, so any order is right; reversed as well, as OpenSSL does).
pub fn rfc4514(name: &X509Name<'_>) -> Result<String, String> {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(attribute)
                .collect::<Result<Vec<_>, _>>()
                .map(|parts| parts.into_iter().rev().collect::<Vec<_>>().join("+"))
        })
        .collect::<Result<_, _>>()?;
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// `TYPE=value`: a registered short name (RFC 4514 section 3's, and the others OpenSSL prints,
/// so the string reads as `openssl x509 -nameopt RFC2253` prints it) with the value as text;
/// other types as a dotted OID with `#` and the hex of the value's DER (section 2.4), as are
/// values that are no string.
fn attribute(atv: &AttributeTypeAndValue<'_>) -> Result<String, String> {
    let oid = atv.attr_type().to_id_string();
    let short = short_name(&oid);
    match (short, string_value(atv)) {
        (Some(short), Some(value)) => Ok(format!("{short}={}", escape(&value))),
        _ => {
            let der = atv
                .attr_value()
                .to_der_vec()
                .map_err(|e| format!("the subject's attribute {oid}: {e}"))?;
            let hex: String = der.iter().map(|b| format!("{b:02X}")).collect();
            Ok(format!("{}=#{hex}", short.unwrap_or(&oid)))
        }
    }
}

/// The registered short name of an attribute type (the IANA LDAP descriptors).
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// The value as text when it is one of the string types a name uses: UTF-8 and the ASCII
/// ones as they are, BMPString (UTF-16) and UniversalString (UTF-32) decoded, TeletexString
/// as Latin-1 (as OpenSSL reads it). `None` for anything else or a malformed string.
fn string_value(atv: &AttributeTypeAndValue<'_>) -> Option<String> {
    use x509_parser::asn1_rs::Tag;
    let data = atv.attr_value().data;
    match atv.attr_value().tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString => {
            std::str::from_utf8(data).ok().map(str::to_string)
        }
        Tag::BmpString if data.len() % 2 == 0 => char::decode_utf16(
            data.chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]])),
        )
        .collect::<Result<String, _>>()
        .ok(),
        Tag::UniversalString if data.len() % 4 == 0 => data
            .chunks_exact(4)
            .map(|q| char::from_u32(u32::from_be_bytes([q[0], q[1], q[2], q[3]])))
            .collect(),
        Tag::T61String => Some(data.iter().map(|b| char::from(*b)).collect()),
        _ => None,
    }
}

/// A string value escaped as RFC 4514 section 2.4 asks (`"+,;<>\`, a leading `#` or space, a
/// trailing space), with every byte outside visible ASCII as `\XX`.
pub fn escape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        let edge_space = b == b' ' && (i == 0 || i + 1 == bytes.len());
        match b {
            b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b'#' if i == 0 => out.push_str("\\#"),
            _ if edge_space => out.push_str("\\ "),
            0x21..=0x7e | b' ' => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_follow_rfc_4514() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape("#x"), "\\#x");
        assert_eq!(escape("x#"), "x#");
        assert_eq!(escape(" a b "), "\\ a b\\ ");
        assert_eq!(escape("q\"<>;\\"), "q\\\"\\<\\>\\;\\\\");
        assert_eq!(escape("J\u{fc}rgen\n"), "J\\C3\\BCrgen\\0A");
    }
}
