//! Ordering Debian version strings the way dpkg does (`[epoch:]upstream[-revision]`).

use std::cmp::Ordering;

/// Compares two Debian versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ra) = split_epoch(a);
    let (eb, rb) = split_epoch(b);
    ea.cmp(&eb).then_with(|| {
        let (ua, da) = split_revision(ra);
        let (ub, db) = split_revision(rb);
        compare_part(ua, ub).then_with(|| compare_part(da, db))
    })
}

fn split_epoch(v: &str) -> (u64, &str) {
    match v.split_once(':') {
        Some((e, rest)) if e.bytes().all(|b| b.is_ascii_digit()) => (e.parse().unwrap_or(0), rest),
        _ => (0, v),
    }
}

fn split_revision(v: &str) -> (&str, &str) {
    v.rsplit_once('-').unwrap_or((v, ""))
}

/// dpkg's `verrevcmp`: alternate non-digit runs (compared with `~` lowest, then end of string,
/// then letters, then other characters) and digit runs (compared numerically).
fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let an = a.iter().take_while(|c| !c.is_ascii_digit()).count();
        let bn = b.iter().take_while(|c| !c.is_ascii_digit()).count();
        let (mut i, mut j) = (0, 0);
        while i < an || j < bn {
            let ca = a.get(i).filter(|_| i < an).map_or(0, |&c| weight(c));
            let cb = b.get(j).filter(|_| j < bn).map_or(0, |&c| weight(c));
            if ca != cb {
                return ca.cmp(&cb);
            }
            i += 1;
            j += 1;
        }
        a = &a[an..];
        b = &b[bn..];
        let ad = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let bd = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let na = trim_zeros(&a[..ad]);
        let nb = trim_zeros(&b[..bd]);
        let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[ad..];
        b = &b[bd..];
    }
    Ordering::Equal
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|&&c| c == b'0').count();
    &d[z..]
}

fn weight(c: u8) -> i32 {
    match c {
        b'~' => -1,
        c if c.is_ascii_alphabetic() => i32::from(c),
        c => i32::from(c) + 256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn orders_like_dpkg() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1:0.1", "2.0", Greater),
            ("6.1.170-1", "6.1.99-1", Greater),
            ("6.1.0-1", "6.1.0-1~bpo12+1", Greater),
            ("1.0-1", "1.0-10", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0+", Less),
            ("001", "1", Equal),
            ("1:1.20230405-1", "1:1.20250430-4~deb12u1", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
