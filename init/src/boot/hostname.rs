//! The host name: `[board] hostname`, else `baton-` and six hex digits of the Pi's serial
//! number, else of the first Ethernet MAC address, else plain `baton`.

use std::io;
use std::path::Path;

use crate::board::context::Ctx;

/// Device tree property holding the Pi's serial number.
const SERIAL: &str = "/sys/firmware/devicetree/base/serial-number";
/// Name used when nothing identifies the board.
const FALLBACK: &str = "baton";

/// Errors setting the host name.
#[derive(Debug, thiserror::Error)]
#[error("cannot set host name {name}: {source}")]
pub struct Error {
    /// The name.
    pub name: String,
    /// Cause.
    pub source: io::Error,
}

/// Picks the host name and sets it; returns it even if setting it failed.
pub fn set(ctx: &Ctx, configured: Option<&str>) -> (String, Result<(), Error>) {
    let name = choose(ctx, configured);
    let result = ctx.sys.set_hostname(&name).map_err(|source| Error {
        name: name.clone(),
        source,
    });
    ctx.state.update_info(|i| i.hostname = name.clone());
    (name, result)
}

/// The host name this board should use.
pub fn choose(ctx: &Ctx, configured: Option<&str>) -> String {
    if let Some(name) = configured {
        return name.to_string();
    }
    std::fs::read(ctx.path(SERIAL))
        .ok()
        .and_then(|raw| from_serial(&String::from_utf8_lossy(&raw)))
        .or_else(|| first_mac(&ctx.path("/sys/class/net")).and_then(|m| from_mac(&m)))
        .unwrap_or_else(|| FALLBACK.to_string())
}

/// `baton-` and the last six hex digits of a serial number (device tree strings end in NUL).
/// A serial of zeros (unset) identifies nothing.
pub fn from_serial(raw: &str) -> Option<String> {
    let serial = raw.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if serial.len() < 6 || !serial.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    if serial.chars().all(|c| c == '0') {
        return None;
    }
    Some(format!(
        "baton-{}",
        serial[serial.len() - 6..].to_ascii_lowercase()
    ))
}

/// `baton-` and the last three bytes of a MAC address (`aa:bb:cc:dd:ee:ff`).
pub fn from_mac(mac: &str) -> Option<String> {
    let bytes: Vec<&str> = mac.trim().split(':').collect();
    if bytes.len() != 6
        || !bytes
            .iter()
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return None;
    }
    if bytes.iter().all(|b| *b == "00") {
        return None;
    }
    Some(format!(
        "baton-{}",
        bytes[3..].concat().to_ascii_lowercase()
    ))
}

/// The MAC of the first (by name) physical Ethernet interface under `class` (`/sys/class/net`).
fn first_mac(class: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(class)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().find_map(|name| {
        let dir = class.join(name);
        // ARPHRD_ETHER, and backed by a device (not a bridge, veth or other virtual link).
        let kind = std::fs::read_to_string(dir.join("type")).ok()?;
        if kind.trim() != "1" || !dir.join("device").exists() {
            return None;
        }
        let mac = std::fs::read_to_string(dir.join("address")).ok()?;
        from_mac(&mac).map(|_| mac.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::testbed::Testbed;

    #[test]
    fn derives_names() {
        assert_eq!(
            from_serial("10000000ABCDEF12\0").as_deref(),
            Some("baton-cdef12")
        );
        assert_eq!(from_serial("0000000000000000\0"), None);
        assert_eq!(from_serial("not-hex!"), None);
        assert_eq!(
            from_mac("52:54:00:12:AB:56\n").as_deref(),
            Some("baton-12ab56")
        );
        assert_eq!(from_mac("00:00:00:00:00:00"), None);
        assert_eq!(from_mac("52:54:00"), None);
    }

    fn net(tb: &Testbed, name: &str, kind: &str, mac: &str, physical: bool) {
        tb.file(&format!("/sys/class/net/{name}/type"), kind);
        tb.file(&format!("/sys/class/net/{name}/address"), mac);
        if physical {
            tb.file(&format!("/sys/class/net/{name}/device/uevent"), "");
        }
    }

    #[test]
    fn configured_beats_serial_beats_mac() {
        let tb = Testbed::new();
        net(&tb, "lo", "772\n", "00:00:00:00:00:00\n", false);
        net(&tb, "baton0", "1\n", "02:00:00:00:00:01\n", false);
        net(&tb, "eth1", "1\n", "52:54:00:00:00:02\n", true);
        net(&tb, "eth0", "1\n", "52:54:00:00:00:01\n", true);
        assert_eq!(choose(&tb.ctx, None), "baton-000001");
        tb.file(SERIAL, "00000000deadbeef\0");
        assert_eq!(choose(&tb.ctx, None), "baton-adbeef");
        assert_eq!(choose(&tb.ctx, Some("kitchen")), "kitchen");
        assert_eq!(choose(&Testbed::new().ctx, None), "baton");
    }

    #[test]
    fn sets_and_records_the_name() {
        let tb = Testbed::new();
        tb.sys.fail("hostname", nix::libc::EPERM);
        let (name, result) = set(&tb.ctx, Some("pi-one"));
        assert_eq!(name, "pi-one");
        assert!(result.expect_err("fails").to_string().contains("pi-one"));
        assert_eq!(tb.state().info().hostname, "pi-one");
        assert_eq!(tb.sys.calls(), ["hostname pi-one"]);
    }
}
