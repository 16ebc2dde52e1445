//! Reading the figures the kernel keeps: `/proc/stat`, `/proc/meminfo`, thermal zones, a
//! file system's space, an instance's cgroup. Each read is bounded ([`MAX_FILE`]) and blocking:
//! call these off the runtime thread.

use std::io::Read;
use std::path::Path;

use super::snapshot::{CgroupStats, Memory, Space};
use crate::board::procfs::kib_field;

/// The most read of any one file: these are a few lines each.
pub const MAX_FILE: u64 = 64 * 1024;
/// Thermal zones read at most.
const MAX_ZONES: usize = 32;

/// `path`'s text, at most [`MAX_FILE`] bytes of it.
pub fn read_bounded(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_FILE)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The CPU modes of `/proc/stat`'s first line, in seconds (`ticks` per second).
pub fn cpu_modes(stat: &str, ticks: f64) -> Vec<(String, f64)> {
    const MODES: [&str; 8] = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return Vec::new();
    };
    MODES
        .iter()
        .zip(line.split_whitespace().skip(1))
        .filter_map(|(mode, v)| Some((mode.to_string(), v.parse::<u64>().ok()? as f64 / ticks)))
        .collect()
}

/// The kernel's clock ticks per second (`USER_HZ`, 100 on every Linux port baton runs on).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf takes no pointer and has no side effect.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// `MemTotal` and `MemAvailable` of a `/proc/meminfo` text.
pub fn memory(meminfo: &str) -> Option<Memory> {
    Some(Memory {
        total: kib_field(meminfo, "MemTotal:")?,
        available: kib_field(meminfo, "MemAvailable:")?,
    })
}

/// The space of the file system holding `path`.
pub fn space(path: &Path) -> Option<Space> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    // All u64 on the 64-bit targets baton builds for.
    let fragment = s.fragment_size();
    let total = s.blocks().saturating_mul(fragment);
    let free = s.blocks_available().saturating_mul(fragment);
    let unused = s.blocks_free().saturating_mul(fragment);
    Some(Space {
        used: total.saturating_sub(unused),
        free,
    })
}

/// Each thermal zone under `root` (`/sys/class/thermal`) and its temperature in degrees: the
/// zone's `type` (or its directory name) and `temp` (millidegrees).
pub fn temperatures(root: &Path) -> Vec<(String, f64)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut zones: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .take(MAX_ZONES)
        .filter_map(|e| {
            let dir = e.path();
            let milli: i64 = read_bounded(&dir.join("temp")).ok()?.trim().parse().ok()?;
            let name = read_bounded(&dir.join("type"))
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty() && t.len() <= 64)
                .unwrap_or_else(|| e.file_name().to_string_lossy().into_owned());
            Some((name, milli as f64 / 1000.0))
        })
        .collect();
    zones.sort_by(|a, b| a.0.cmp(&b.0));
    zones
}

/// An instance's figures from its cgroup directory.
pub fn cgroup(dir: &Path) -> Option<CgroupStats> {
    let stat = read_bounded(&dir.join("cpu.stat")).ok()?;
    let memory = read_bounded(&dir.join("memory.current")).ok()?;
    Some(CgroupStats {
        cpu_seconds: field(&stat, "usage_usec")? as f64 / 1e6,
        throttled_seconds: field(&stat, "throttled_usec").unwrap_or(0) as f64 / 1e6,
        memory_bytes: memory.trim().parse().ok()?,
    })
}

/// The value of `key` in a flat-keyed cgroup file (`key value` per line).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_modes_are_read_in_seconds() {
        let stat = "cpu  4705 356 584 3699 23 23 0 0 0 0\ncpu0 2000 100 200 1000 10 10 0 0 0 0\n";
        let modes = cpu_modes(stat, 100.0);
        assert_eq!(modes.len(), 8);
        assert_eq!(modes[0], ("user".to_string(), 47.05));
        assert_eq!(modes[3], ("idle".to_string(), 36.99));
        assert!(cpu_modes("cpu0 1 2 3\n", 100.0).is_empty());
        // A field that is not a number is left out, not read as zero.
        assert_eq!(cpu_modes("cpu  1 x 3\n", 100.0).len(), 2);
    }

    #[test]
    fn memory_and_cgroup_files_are_read() {
        let meminfo = "MemTotal:  1000 kB\nMemFree: 10 kB\nMemAvailable:   400 kB\n";
        assert_eq!(
            memory(meminfo),
            Some(Memory {
                total: 1_024_000,
                available: 409_600
            })
        );
        assert_eq!(memory("MemTotal: 1 kB\n"), None);

        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 4\nnr_throttled 1\nthrottled_usec 125000\n",
        )
        .expect("cpu.stat");
        std::fs::write(dir.path().join("memory.current"), "4096\n").expect("memory.current");
        let stats = cgroup(dir.path()).expect("stats");
        assert_eq!(stats.cpu_seconds, 2.5);
        assert_eq!(stats.throttled_seconds, 0.125);
        assert_eq!(stats.memory_bytes, 4096);
        assert_eq!(cgroup(&dir.path().join("gone")), None);
    }

    #[test]
    fn thermal_zones_are_named_by_type_and_absent_without_any() {
        let root = tempfile::tempdir().expect("temp dir");
        assert!(temperatures(root.path()).is_empty());
        assert!(temperatures(&root.path().join("no-such-dir")).is_empty());
        let zone = root.path().join("thermal_zone0");
        std::fs::create_dir(&zone).expect("zone");
        std::fs::write(zone.join("temp"), "48312\n").expect("temp");
        std::fs::write(zone.join("type"), "cpu-thermal\n").expect("type");
        let bare = root.path().join("thermal_zone1");
        std::fs::create_dir(&bare).expect("zone");
        std::fs::write(bare.join("temp"), "-5000\n").expect("temp");
        assert_eq!(
            temperatures(root.path()),
            [
                ("cpu-thermal".to_string(), 48.312),
                ("thermal_zone1".to_string(), -5.0)
            ]
        );
    }

    #[test]
    fn reads_stop_at_the_bound() {
        let dir = tempfile::tempdir().expect("temp dir");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; MAX_FILE as usize * 2]).expect("big");
        assert_eq!(read_bounded(&big).expect("read").len(), MAX_FILE as usize);
        assert!(space(dir.path()).is_some_and(|s| s.free > 0));
    }
}
