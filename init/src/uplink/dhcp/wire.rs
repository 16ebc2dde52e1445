//! A check of a DHCP message's options before `dhcproto` decodes it. dhcproto 0.15 trusts the
//! length byte of a few fixed-size options (Rapid Commit, Client FQDN, Client Network
//! Interface, the bulk lease query times): a debug build asserts it, a release build reads the
//! fixed size whatever the length says and misreads every option after it. A message from the
//! LAN whose options do not fit their lengths is dropped here instead.

/// Where the options start: after the fixed header (236 bytes) and the magic cookie.
const OPTIONS: usize = 240;
/// The magic cookie that opens the options.
const COOKIE: [u8; 4] = [99, 130, 83, 99];

/// Whether the option `code` may be `len` bytes long, for the options dhcproto reads with a
/// fixed size.
fn length_fits(code: u8, len: usize) -> bool {
    match code {
        80 => len == 0,        // Rapid Commit
        81 => len >= 3,        // Client FQDN: flags and two rcodes, then the name
        94 => len == 3,        // Client Network Interface
        151 => len >= 1,       // bulk lease query status: a code, then text
        152..=155 => len == 4, // bulk lease query times
        _ => true,
    }
}

/// `false` when `message` lacks the magic cookie (dhcproto decodes options without it), or an
/// option runs past its end or has a length its code cannot have; a message too short to hold
/// options is left to the decoder, which refuses it.
pub fn options_are_sound(message: &[u8]) -> bool {
    if message.len() < OPTIONS {
        return true;
    }
    if message[OPTIONS - 4..OPTIONS] != COOKIE {
        return false;
    }
    // dhcproto joins the options of one code into one (RFC 3396): their lengths add up.
    let mut total: [Option<usize>; 256] = [None; 256];
    let mut at = OPTIONS;
    while let Some(&code) = message.get(at) {
        match code {
            0 => at += 1,
            255 => break,
            _ => {
                let Some(&len) = message.get(at + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if at + 2 + len > message.len() {
                    return false;
                }
                let seen = &mut total[usize::from(code)];
                *seen = Some(seen.unwrap_or(0) + len);
                at += 2 + len;
            }
        }
    }
    (0..=255u8).all(|code| total[usize::from(code)].is_none_or(|len| length_fits(code, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_options(options: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 236];
        b.extend_from_slice(&COOKIE);
        b.extend_from_slice(options);
        b
    }

    #[test]
    fn options_must_fit_their_lengths() {
        assert!(options_are_sound(&with_options(&[53, 1, 2, 0, 255])));
        assert!(options_are_sound(&with_options(&[152, 4, 0, 0, 0, 1])));
        assert!(
            !options_are_sound(&with_options(&[152, 2, 0, 0])),
            "a short fixed option"
        );
        assert!(
            !options_are_sound(&with_options(&[80, 1, 0])),
            "rapid commit has no data"
        );
        assert!(
            !options_are_sound(&with_options(&[53, 9, 2])),
            "runs past the end"
        );
        assert!(!options_are_sound(&with_options(&[53])), "no length");
        assert!(
            !options_are_sound(&with_options(&[94, 3, 1, 2, 3, 94, 3, 1, 2, 3])),
            "two parts that join into a length the code cannot have"
        );
        assert!(
            !options_are_sound(&with_options(&[151, 0])),
            "a status without its code"
        );
        assert!(
            options_are_sound(&with_options(&[80, 0, 255])),
            "rapid commit"
        );
        assert!(
            options_are_sound(&[1, 2, 3]),
            "too short: left to the decoder"
        );
    }
}
