//! The board's load and its instances' use, for the JSON API (`GET /v1/status`'s `load`,
//! `GET /v1/services`'s `usage`): the same kernel files a scrape reads ([`super::sources`]),
//! read off the runtime thread within [`READ_LIMIT`].

use std::collections::BTreeMap;

use baton_api::{BoardLoad, Usage};

use super::collect::{Paths, READ_LIMIT};
use super::sources;

/// The board's load now; `None` if the files could not be read in time.
pub async fn board_load(paths: Paths) -> Option<BoardLoad> {
    off_thread(move || read_load(&paths)).await.flatten()
}

/// The use of each instance in `ids` that has a cgroup, by id; empty if the files could not
/// be read in time.
pub async fn usage(paths: Paths, ids: Vec<String>) -> BTreeMap<String, Usage> {
    off_thread(move || {
        ids.into_iter()
            .filter_map(|id| {
                let c = sources::cgroup(&paths.cgroups.join(&id))?;
                let usage = Usage {
                    cpu_ms: (c.cpu_seconds * 1000.0) as u64,
                    memory_bytes: c.memory_bytes,
                };
                Some((id, usage))
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

async fn off_thread<T: Send + 'static>(read: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::time::timeout(READ_LIMIT, tokio::task::spawn_blocking(read))
        .await
        .ok()?
        .ok()
}

fn read_load(paths: &Paths) -> Option<BoardLoad> {
    let stat = sources::read_bounded(&paths.proc.join("stat")).ok()?;
    let memory = sources::read_bounded(&paths.proc.join("meminfo"))
        .ok()
        .and_then(|m| sources::memory(&m));
    let data = sources::space(&paths.data);
    let (total, busy) = cpu_ms(&sources::cpu_modes(&stat, sources::ticks_per_second()));
    Some(BoardLoad {
        cpus: cpus(&stat),
        cpu_total_ms: total,
        cpu_busy_ms: busy,
        memory_total_bytes: memory.map_or(0, |m| m.total),
        memory_available_bytes: memory.map_or(0, |m| m.available),
        data_used_bytes: data.map(|d| d.used),
        data_free_bytes: data.map(|d| d.free),
    })
}

/// All CPU time and the time not idle nor waiting for I/O, in ms, from the modes in seconds.
fn cpu_ms(modes: &[(String, f64)]) -> (u64, u64) {
    let total: f64 = modes.iter().map(|(_, s)| s).sum();
    let resting: f64 = modes
        .iter()
        .filter(|(m, _)| m == "idle" || m == "iowait")
        .map(|(_, s)| s)
        .sum();
    ((total * 1000.0) as u64, ((total - resting) * 1000.0) as u64)
}

/// The CPUs `/proc/stat` lists (`cpu0`, `cpu1`, ...).
fn cpus(stat: &str) -> u32 {
    let n = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_leaves_out_idle_and_io_wait() {
        let stat = "cpu  400 0 100 1000 50 0 0 0 0 0\ncpu0 200 0 50 500 25 0 0 0 0 0\ncpu1 200 0 50 500 25 0 0 0 0 0\nintr 1\n";
        let (total, busy) = cpu_ms(&sources::cpu_modes(stat, 100.0));
        assert_eq!((total, busy), (15_500, 5_000));
        assert_eq!(cpus(stat), 2);
    }

    #[tokio::test]
    async fn an_instance_without_a_cgroup_has_no_usage() {
        let dir = tempfile::tempdir().expect("dir");
        let cg = dir.path().join("web-1");
        std::fs::create_dir(&cg).expect("mkdir");
        std::fs::write(
            cg.join("cpu.stat"),
            "usage_usec 2500000\nthrottled_usec 0\n",
        )
        .expect("w");
        std::fs::write(cg.join("memory.current"), "4194304\n").expect("w");
        let paths = Paths {
            cgroups: dir.path().to_path_buf(),
            ..Paths::default()
        };
        let got = usage(paths, vec!["web-1".into(), "web-2".into()]).await;
        assert_eq!(
            got.get("web-1"),
            Some(&Usage {
                cpu_ms: 2500,
                memory_bytes: 4 << 20
            })
        );
        assert!(!got.contains_key("web-2"));
    }
}
