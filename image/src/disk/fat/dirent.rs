//! FAT directory entries: 8.3 short names, VFAT long-name slots, timestamps.

/// Attribute: the entry is the volume label.
pub const ATTR_VOLUME_ID: u8 = 0x08;
/// Attribute: directory.
pub const ATTR_DIRECTORY: u8 = 0x10;
/// Attribute: archive (set on regular files, as every tool does).
pub const ATTR_ARCHIVE: u8 = 0x20;
/// Attribute combination that marks a long-file-name slot.
const ATTR_LONG_NAME: u8 = 0x0f;

/// UTF-16 units per long-name slot.
const LFN_CHARS: usize = 13;

/// Rejects names no FAT implementation accepts as a long file name.
pub fn validate_long_name(name: &str) -> Result<(), &'static str> {
    if name == "." || name == ".." {
        return Err("'.' and '..' are reserved");
    }
    if name.encode_utf16().count() > 255 {
        return Err("longer than 255 UTF-16 units");
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err("ends in a dot or a space");
    }
    if name
        .chars()
        .any(|c| c < ' ' || matches!(c, '"' | '*' | '/' | ':' | '<' | '>' | '?' | '\\' | '|'))
    {
        return Err("contains a control character or one of \" * / : < > ? \\ |");
    }
    Ok(())
}

/// Whether `c` may appear in a short name as it is.
fn short_char_ok(c: char) -> bool {
    c.is_ascii_uppercase()
        || c.is_ascii_digit()
        || matches!(
            c,
            '!' | '#'
                | '$'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '-'
                | '@'
                | '^'
                | '_'
                | '`'
                | '{'
                | '}'
                | '~'
        )
}

/// The 11-byte short name if `name` is already a valid upper-case 8.3 name (then no long name is needed).
pub fn exact_short_name(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = match name.split_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    let ok = |s: &str, max: usize| s.len() <= max && s.chars().all(short_char_ok);
    if base.is_empty() || !ok(base, 8) || !ok(ext, 3) || (name.contains('.') && ext.is_empty()) {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base.as_bytes());
    out[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    Some(out)
}

/// The short name stored beside long name `name`, unique against `taken`: the name in upper case
/// when that is a valid 8.3 name (`config.txt` -> `CONFIG.TXT`), else `BASIS~N.EXT` as Windows makes it.
pub fn generated_short_name(name: &str, taken: &dyn Fn(&[u8; 11]) -> bool) -> [u8; 11] {
    if let Some(upper) = exact_short_name(&name.to_ascii_uppercase()) {
        if !taken(&upper) {
            return upper;
        }
    }
    let clean = |s: &str| -> Vec<u8> {
        s.chars()
            .filter(|c| *c != ' ' && *c != '.')
            .map(|c| c.to_ascii_uppercase())
            .map(|c| if short_char_ok(c) { c as u8 } else { b'_' })
            .collect()
    };
    let trimmed = name.trim_start_matches('.');
    let (base, ext) = match trimmed.rsplit_once('.') {
        Some((b, e)) => (clean(b), clean(e)),
        None => (clean(trimmed), Vec::new()),
    };
    let mut out = [b' '; 11];
    let ext = &ext[..ext.len().min(3)];
    out[8..8 + ext.len()].copy_from_slice(ext);
    for n in 1u32.. {
        let tail = format!("~{n}");
        let keep = base.len().min(8 - tail.len());
        let mut candidate = out;
        candidate[..8].fill(b' ');
        candidate[..keep].copy_from_slice(&base[..keep]);
        candidate[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
        if !taken(&candidate) {
            return candidate;
        }
    }
    out
}

/// The checksum of a short name that every long-name slot of the same entry carries.
pub fn short_name_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// The long-name slots for `name`, in on-disk order (last part first), each 32 bytes.
pub fn long_name_slots(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let mut units: Vec<u16> = name.encode_utf16().collect();
    if units.len() % LFN_CHARS != 0 {
        units.push(0x0000);
        while units.len() % LFN_CHARS != 0 {
            units.push(0xffff);
        }
    }
    let count = units.len() / LFN_CHARS;
    let checksum = short_name_checksum(short);
    (0..count)
        .rev()
        .map(|i| {
            let part = &units[i * LFN_CHARS..(i + 1) * LFN_CHARS];
            let mut e = [0u8; 32];
            // +0: sequence number (1-based); 0x40 marks the last slot, which is stored first.
            e[0] = (i as u8 + 1) | if i + 1 == count { 0x40 } else { 0 };
            // +1..11: characters 1-5; +14..26: characters 6-11; +28..32: characters 12-13.
            let put = |e: &mut [u8; 32], at: usize, chars: &[u16]| {
                for (k, c) in chars.iter().enumerate() {
                    e[at + 2 * k..at + 2 * k + 2].copy_from_slice(&c.to_le_bytes());
                }
            };
            put(&mut e, 1, &part[0..5]);
            put(&mut e, 14, &part[5..11]);
            put(&mut e, 28, &part[11..13]);
            // +11: attributes; +12: type 0; +13: checksum; +26..28: first cluster, always 0.
            e[11] = ATTR_LONG_NAME;
            e[13] = checksum;
            e
        })
        .collect()
}

/// FAT date and time of a Unix timestamp (UTC), clamped to FAT's 1980-2107 range.
pub fn fat_date_time(unix: i64) -> (u16, u16) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if year < 1980 {
        return (1 << 5 | 1, 0);
    }
    if year > 2107 {
        return (127 << 9 | 12 << 5 | 31, 23 << 11 | 59 << 5 | 29);
    }
    let date = ((year - 1980) << 9 | month << 5 | day) as u16;
    let time = ((secs / 3600) << 11 | (secs / 60 % 60) << 5 | ((secs % 60) / 2)) as u16;
    (date, time)
}

/// A 32-byte short directory entry.
pub fn short_entry(
    short: &[u8; 11],
    attr: u8,
    cluster: u32,
    size: u32,
    (date, time): (u16, u16),
) -> [u8; 32] {
    let mut e = [0u8; 32];
    // +0..11: name and extension, space padded.
    e[..11].copy_from_slice(short);
    // +11: attributes. +12: case flags (unused, we write long names instead). +13: creation 10 ms units.
    e[11] = attr;
    // +14..18: creation time and date; +18..20: access date.
    e[14..16].copy_from_slice(&time.to_le_bytes());
    e[16..18].copy_from_slice(&date.to_le_bytes());
    e[18..20].copy_from_slice(&date.to_le_bytes());
    // +20..22: high 16 bits of the first cluster.
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    // +22..26: modification time and date.
    e[22..24].copy_from_slice(&time.to_le_bytes());
    e[24..26].copy_from_slice(&date.to_le_bytes());
    // +26..28: low 16 bits of the first cluster; +28..32: size in bytes (0 for directories).
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_short_names() {
        assert_eq!(exact_short_name("KERNEL8.IMG"), Some(*b"KERNEL8 IMG"));
        assert_eq!(exact_short_name("README"), Some(*b"README     "));
        assert_eq!(exact_short_name("config.txt"), None);
        assert_eq!(exact_short_name("A.B.C"), None);
        assert_eq!(exact_short_name("TOOLONGNAME"), None);
    }

    #[test]
    fn generated_short_names_are_unique() {
        let first = generated_short_name("bcm2837-rpi-3-b.dtb", &|_| false);
        assert_eq!(&first, b"BCM283~1DTB");
        let second = generated_short_name("bcm2837-rpi-3-b.dtb", &|n| n == &first);
        assert_eq!(&second, b"BCM283~2DTB");
        assert_eq!(&generated_short_name(".hidden", &|_| false), b"HIDDEN~1   ");
        assert_eq!(
            &generated_short_name("config.txt", &|_| false),
            b"CONFIG  TXT"
        );
        assert_eq!(
            &generated_short_name("config.txt", &|n| n == b"CONFIG  TXT"),
            b"CONFIG~1TXT"
        );
    }

    #[test]
    fn checksum_matches_reference() {
        // Reference value computed by hand with the algorithm from Microsoft's FAT specification.
        let mut sum = 0u8;
        for &b in b"BCM283~1DTB" {
            sum = ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(b);
        }
        assert_eq!(short_name_checksum(b"BCM283~1DTB"), sum);
    }

    #[test]
    fn long_name_slots_are_terminated_and_padded() {
        let slots = long_name_slots("config.txt", b"CONFIG~1TXT");
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0][0], 0x41);
        assert_eq!(slots[0][11], 0x0f);
        // Characters 11 (the terminator) and 12-13 (padding).
        assert_eq!(&slots[0][24..26], &[0, 0]);
        assert_eq!(&slots[0][28..32], &[0xff; 4]);
        let two = long_name_slots("exactly-13chr", b"EXACTL~1   ");
        assert_eq!(two.len(), 1);
        assert_eq!(long_name_slots("fourteen-chars", b"FOURTE~1   ").len(), 2);
    }

    #[test]
    fn dates() {
        // 2024-02-29 13:45:58 UTC.
        let (d, t) = fat_date_time(1_709_214_358);
        assert_eq!(d, (44 << 9) | (2 << 5) | 29);
        assert_eq!(t, (13 << 11) | (45 << 5) | 29);
        assert_eq!(fat_date_time(0), (1 << 5 | 1, 0));
    }
}
