//! A device tree blob changed for QEMU's `raspi4b`, which models no firmware GPIO expander:
//! the Pi 4's SD controllers take their power (emmc2, `mmc@7e340000`: a regulator switched by
//! the expander) or their power sequence (`mmc@7e300000`, the Wi-Fi chip's on the board) from
//! it, so under QEMU their probes wait forever and the board finds no card. QEMU attaches
//! `-drive if=sd` to the second one (on the board the card is on emmc2). The runner drops
//! those properties in place: each becomes `FDT_NOP` tokens, which the format allows anywhere
//! in the structure block, so no offset in the blob moves. Everything else is the board's
//! own device tree.

const MAGIC: u32 = 0xd00d_feed;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// The Pi 4 SD controller's node name, and the properties dropped from it.
pub const RASPI4B_SD: (&str, &[&str]) = ("mmc@7e340000", &["vmmc-supply", "vqmmc-supply"]);
/// The other SD controller (the Wi-Fi chip's on the board), whose power sequence also needs
/// the expander.
pub const RASPI4B_SDHCI: (&str, &[&str]) = ("mmc@7e300000", &["mmc-pwrseq", "non-removable"]);

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Turns the properties `names` of every node called `node` into NOPs; returns how many were
/// dropped, or `None` for a blob that does not read as a device tree.
pub fn drop_properties(dtb: &mut [u8], node: &str, names: &[&str]) -> Option<usize> {
    if be32(dtb, 0)? != MAGIC {
        return None;
    }
    let structs = usize::try_from(be32(dtb, 8)?).ok()?;
    let strings = usize::try_from(be32(dtb, 12)?).ok()?;
    let end = structs.checked_add(usize::try_from(be32(dtb, 36)?).ok()?)?;
    let mut at = structs;
    let mut path: Vec<String> = Vec::new();
    let mut dropped = 0;
    while at < end {
        match be32(dtb, at)? {
            BEGIN_NODE => {
                let name_at = at + 4;
                let len = dtb.get(name_at..end)?.iter().position(|b| *b == 0)?;
                path.push(String::from_utf8_lossy(&dtb[name_at..name_at + len]).into_owned());
                at = name_at + align4(len + 1);
            }
            END_NODE => {
                path.pop()?;
                at += 4;
            }
            PROP => {
                let len = usize::try_from(be32(dtb, at + 4)?).ok()?;
                let name_off = usize::try_from(be32(dtb, at + 8)?).ok()?;
                let name_at = strings.checked_add(name_off)?;
                let name_len = dtb.get(name_at..)?.iter().position(|b| *b == 0)?;
                let name = &dtb[name_at..name_at + name_len];
                let next = at.checked_add(12)?.checked_add(align4(len))?;
                if next > end {
                    return None;
                }
                let here = path.last().is_some_and(|n| n == node);
                if here && names.iter().any(|n| n.as_bytes() == name) {
                    for word in dtb[at..next].chunks_exact_mut(4) {
                        word.copy_from_slice(&NOP.to_be_bytes());
                    }
                    dropped += 1;
                }
                at = next;
            }
            NOP => at += 4,
            END => break,
            _ => return None,
        }
    }
    Some(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob with `/soc/mmc@7e340000 { vmmc-supply = <1>; bus-width = <4>; }`.
    fn blob() -> Vec<u8> {
        let strings = b"vmmc-supply\0bus-width\0".to_vec();
        let mut s: Vec<u8> = Vec::new();
        let word = |s: &mut Vec<u8>, w: u32| s.extend_from_slice(&w.to_be_bytes());
        let node = |s: &mut Vec<u8>, name: &str| {
            s.extend_from_slice(&BEGIN_NODE.to_be_bytes());
            s.extend_from_slice(name.as_bytes());
            s.push(0);
            while s.len() % 4 != 0 {
                s.push(0);
            }
        };
        node(&mut s, "");
        node(&mut s, "soc");
        node(&mut s, "mmc@7e340000");
        for (off, value) in [(0u32, 1u32), (12, 4)] {
            word(&mut s, PROP);
            word(&mut s, 4);
            word(&mut s, off);
            word(&mut s, value);
        }
        word(&mut s, END_NODE);
        word(&mut s, END_NODE);
        word(&mut s, END_NODE);
        word(&mut s, END);
        let header = 40;
        let mut b = Vec::new();
        for w in [
            MAGIC,
            0,
            header,
            header + s.len() as u32,
            0,
            17,
            16,
            0,
            strings.len() as u32,
            s.len() as u32,
        ] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(&s);
        b.extend_from_slice(&strings);
        let total = b.len() as u32;
        b[4..8].copy_from_slice(&total.to_be_bytes());
        b
    }

    #[test]
    fn the_named_property_becomes_nops_and_nothing_moves() {
        let mut b = blob();
        let before = b.clone();
        let (node, names) = RASPI4B_SD;
        assert_eq!(drop_properties(&mut b, node, names), Some(1));
        assert_eq!(b.len(), before.len());
        let changed: Vec<&[u8]> = b
            .chunks_exact(4)
            .zip(before.chunks_exact(4))
            .filter(|(a, z)| a != z)
            .map(|(a, _)| a)
            .collect();
        assert_eq!(
            changed.len(),
            3,
            "the property's other 3 words (its len was a NOP already)"
        );
        assert!(changed.iter().all(|w| *w == NOP.to_be_bytes()));
        // bus-width stays.
        assert_eq!(drop_properties(&mut b, node, &["bus-width"]), Some(1));
        assert_eq!(drop_properties(&mut b, "mmc@0", names), Some(0));
    }

    #[test]
    fn a_blob_that_is_not_a_device_tree_is_left() {
        assert_eq!(drop_properties(&mut [0u8; 64], "x", &["y"]), None);
        let mut cut = blob();
        cut.truncate(60);
        assert_eq!(
            drop_properties(&mut cut, "mmc@7e340000", &["vmmc-supply"]),
            None
        );
    }
}
