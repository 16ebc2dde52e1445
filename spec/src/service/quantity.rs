//! Byte quantities such as `"64Mi"` or `"1G"`, and CPU amounts in cores.
//!
//! Binary suffixes `Ki`, `Mi`, `Gi`, `Ti` count in powers of 1024; decimal suffixes `K` (or `k`),
//! `M`, `G`, `T` in powers of 1000; a bare number is bytes. Whole numbers only.

/// Suffixes and their multipliers, binary first so that formatting prefers them.
const SUFFIXES: [(&str, u64); 9] = [
    ("Ti", 1 << 40),
    ("Gi", 1 << 30),
    ("Mi", 1 << 20),
    ("Ki", 1 << 10),
    ("T", 1_000_000_000_000),
    ("G", 1_000_000_000),
    ("M", 1_000_000),
    ("K", 1_000),
    ("k", 1_000),
];

/// Why a text is not a byte quantity or a value is not a CPU amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Nothing was written.
    #[error("a quantity cannot be empty: write for example \"64Mi\"")]
    Empty,
    /// Not a whole number followed by an optional suffix.
    #[error("{text:?} is not a quantity: write a whole number with an optional suffix Ki, Mi, Gi, Ti (powers of 1024) or K, M, G, T (powers of 1000), for example \"64Mi\"")]
    Malformed {
        /// The text as written.
        text: String,
    },
    /// A suffix that is not one of ours; `MB`/`GB` get a hint.
    #[error("{text:?} uses the unknown suffix {suffix:?}: use Ki, Mi, Gi, Ti or K, M, G, T (\"MB\" is written \"M\", \"MiB\" is written \"Mi\")")]
    UnknownSuffix {
        /// The text as written.
        text: String,
        /// The suffix found.
        suffix: String,
    },
    /// More bytes than a 64-bit count holds.
    #[error("{text:?} is too large")]
    TooLarge {
        /// The text as written.
        text: String,
    },
    /// A negative number of bytes.
    #[error("{value} is negative: a quantity counts bytes")]
    Negative {
        /// The value given.
        value: i64,
    },
    /// A CPU amount that is not a finite positive number of cores in steps of 0.001.
    #[error(
        "{value} is not a CPU amount: write a number of cores such as 0.5 or 2, in steps of 0.001"
    )]
    BadCpu {
        /// The value given.
        value: String,
    },
}

/// Parses a byte quantity: `"64Mi"` is 64 × 2²⁰ bytes, `"1G"` 10⁹ bytes, `"4096"` 4096 bytes.
pub fn parse_bytes(text: &str) -> Result<u64, QuantityError> {
    if text.is_empty() {
        return Err(QuantityError::Empty);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, suffix) = text.split_at(digits);
    if number.is_empty() || !suffix.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(QuantityError::Malformed {
            text: text.to_string(),
        });
    }
    let multiplier = if suffix.is_empty() {
        1
    } else {
        SUFFIXES
            .iter()
            .find(|(s, _)| *s == suffix)
            .map(|(_, m)| *m)
            .ok_or_else(|| QuantityError::UnknownSuffix {
                text: text.to_string(),
                suffix: suffix.to_string(),
            })?
    };
    let too_large = || QuantityError::TooLarge {
        text: text.to_string(),
    };
    let value: u64 = number.parse().map_err(|_| too_large())?;
    value.checked_mul(multiplier).ok_or_else(too_large)
}

/// Accepts a byte count given as a TOML integer.
pub fn bytes_from_integer(value: i64) -> Result<u64, QuantityError> {
    u64::try_from(value).map_err(|_| QuantityError::Negative { value })
}

/// Writes a byte count in the shortest exact form [`parse_bytes`] reads back, preferring binary
/// suffixes: 67108864 is `"64Mi"`, 2000000 is `"2M"`, 1000 is `"1K"`, 1023 is `"1023"`.
pub fn format_bytes(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    SUFFIXES
        .iter()
        .filter(|(s, _)| *s != "k")
        .find(|(_, m)| bytes % m == 0)
        .map_or_else(|| bytes.to_string(), |(s, m)| format!("{}{s}", bytes / m))
}

/// Turns a number of cores (`0.5`, `2`) into thousandths of a core. Values must be finite,
/// positive and a whole number of thousandths.
pub fn cpu_millis(cores: f64) -> Result<u32, QuantityError> {
    let bad = || QuantityError::BadCpu {
        value: cores.to_string(),
    };
    if !cores.is_finite() || cores <= 0.0 || cores > f64::from(u32::MAX) / 1000.0 {
        return Err(bad());
    }
    let millis = (cores * 1000.0).round();
    if (millis - cores * 1000.0).abs() > 1e-6 || millis < 1.0 {
        return Err(bad());
    }
    // In range: checked above against u32::MAX / 1000, and rounded to a whole number.
    Ok(millis as u32)
}

/// Writes thousandths of a core as the number of cores [`cpu_millis`] reads back.
pub fn cores_from_millis(millis: u32) -> f64 {
    f64::from(millis) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!(parse_bytes("64Mi"), Ok(64 << 20));
        assert_eq!(parse_bytes("1Gi"), Ok(1 << 30));
        assert_eq!(parse_bytes("512Ki"), Ok(512 << 10));
        assert_eq!(parse_bytes("2Ti"), Ok(2 << 40));
        assert_eq!(parse_bytes("64M"), Ok(64_000_000));
        assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_bytes("3K"), Ok(3_000));
        assert_eq!(parse_bytes("3k"), Ok(3_000));
        assert_eq!(parse_bytes("1T"), Ok(1_000_000_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("0064Mi"), Ok(64 << 20));
    }

    #[test]
    fn rejects_bad_quantities_with_the_reason() {
        assert_eq!(parse_bytes(""), Err(QuantityError::Empty));
        for bad in [
            "Mi", "1.5Gi", "-1Mi", " 64Mi", "64 Mi", "64Mi ", "6_4Mi", "64Mi2", "+1",
        ] {
            assert!(
                matches!(parse_bytes(bad), Err(QuantityError::Malformed { .. })),
                "{bad:?} gave {:?}",
                parse_bytes(bad)
            );
        }
        for bad in ["64MB", "64MiB", "1g", "1mi", "64b", "1Pi"] {
            assert!(
                matches!(parse_bytes(bad), Err(QuantityError::UnknownSuffix { .. })),
                "{bad:?}"
            );
        }
        assert!(parse_bytes("64MB")
            .unwrap_err()
            .to_string()
            .contains("\"M\""));
        for bad in [
            "16777216Ti",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            assert!(
                matches!(parse_bytes(bad), Err(QuantityError::TooLarge { .. })),
                "{bad:?}"
            );
        }
        // The largest representable values still parse.
        assert_eq!(parse_bytes("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_bytes("16777215Ti"), Ok(16_777_215 << 40));
        assert_eq!(bytes_from_integer(5), Ok(5));
        assert_eq!(
            bytes_from_integer(-5),
            Err(QuantityError::Negative { value: -5 })
        );
    }

    #[test]
    fn formatting_round_trips() {
        let mut values = vec![
            0,
            1,
            1000,
            1023,
            1024,
            1_000_000,
            64 << 20,
            u64::MAX,
            1 << 40,
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for shift in 0..64 {
            values.push(1 << shift);
            values.push((1u64 << shift).wrapping_mul(1000));
        }
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x);
            values.push((x % 100_000) << 20);
            values.push((x % 100_000) * 1_000_000);
        }
        for v in values {
            let text = format_bytes(v);
            assert_eq!(parse_bytes(&text), Ok(v), "{v} -> {text}");
        }
        assert_eq!(format_bytes(64 << 20), "64Mi");
        assert_eq!(format_bytes(2_000_000), "2M");
        assert_eq!(format_bytes(1023), "1023");
    }

    #[test]
    fn cpu_amounts() {
        assert_eq!(cpu_millis(0.5), Ok(500));
        assert_eq!(cpu_millis(2.0), Ok(2000));
        assert_eq!(cpu_millis(0.001), Ok(1));
        assert_eq!(cpu_millis(0.1 + 0.2), Ok(300));
        for bad in [0.0, -1.0, 0.0005, 0.1234, f64::NAN, f64::INFINITY, 1e300] {
            assert!(cpu_millis(bad).is_err(), "{bad}");
        }
        for millis in [1, 10, 333, 500, 1000, 1500, 64_000, 4_000_000] {
            assert_eq!(cpu_millis(cores_from_millis(millis)), Ok(millis));
        }
    }
}
