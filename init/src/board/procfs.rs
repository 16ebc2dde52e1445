//! Fields of the kernel's `/proc` text files that more than one part reads.

/// A `Name:   1234 kB` field of `/proc/meminfo` or `/proc/<pid>/status`, in bytes; `None` when
/// it is missing or not a number (or too large to count in bytes).
pub fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields_and_refuses_what_is_not_one() {
        let text = "MemTotal:       524288 kB\nVmRSS:\t  8040 kB\n";
        assert_eq!(kib_field(text, "MemTotal:"), Some(512 << 20));
        assert_eq!(kib_field(text, "VmRSS:"), Some(8040 * 1024));
        assert_eq!(kib_field(text, "MemFree:"), None);
        assert_eq!(kib_field("MemTotal: lots\n", "MemTotal:"), None);
        assert_eq!(
            kib_field("MemTotal: 18446744073709551615 kB\n", "MemTotal:"),
            None
        );
    }
}
