//! This board's gossip generation: a boot counter on the data partition (`/data/baton/generation`).
//!
//! Every start takes the counter plus one. During a run the gossip may renew the board's
//! membership identity one generation up each time the cluster declares it down
//! ([`GossipHandle::member_generation`]), so the counter is raised above every generation the board
//! used: the next start is then above all of them. Without that, a board renewed from N to N+1
//! would start again at N+1, which its peers may still hold as down (one more renewal round).

use std::path::Path;
use std::sync::Arc;

use super::Node;
use crate::board::console::Console;

/// The counter's file name in its directory.
const FILE: &str = "generation";
/// Longest counter file read: a u64 in decimal, with room for a line end.
const MAX_BYTES: u64 = 32;

/// The next generation of this board: a boot counter kept in `dir` on the data partition (the
/// board's `/data/baton`), or the time in seconds without one. A counter that cannot be read or
/// saved is reported on `console`; one that cannot be read continues from the time in seconds,
/// far above any count of boots: peers keep the generation a board last signed in across their
/// own restarts and refuse lower ones, so starting again from one would leave the board out
/// until `baton boards forget`.
pub fn next_generation(dir: Option<&Path>, console: &Console) -> u64 {
    let since_epoch = super::now_ms() / 1000;
    let Some(dir) = dir else {
        return since_epoch;
    };
    let path = dir.join(FILE);
    let next = match read(&path) {
        Ok(last) => last.saturating_add(1),
        Err(e) => {
            console.line(format_args!(
                "cluster: the generation in {}: {e}; counting on from the clock",
                path.display()
            ));
            since_epoch
        }
    };
    if let Err(e) = crate::board::persist::write_atomic(&path, next.to_string().as_bytes()) {
        console.line(format_args!(
            "cluster: saving the generation in {}: {e}",
            path.display()
        ));
        return since_epoch.max(next);
    }
    next
}

/// The counter in `path`; 0 when there is none.
fn read(path: &Path) -> Result<u64, String> {
    let Some(bytes) = crate::board::persist::read_bounded(path, MAX_BYTES)? else {
        return Ok(0);
    };
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .ok_or_else(|| "not a number".to_owned())
}

/// How far above a renewed generation the counter is written, so that it is written once per
/// [`HEADROOM`] renewals, not at each: a key holder can make the board renew about once a second,
/// and each write syncs the card.
const HEADROOM: u64 = 64;

/// Raises the counter in `dir` above `used`, a generation this board used, when it does not
/// cover it yet (to `used` plus [`HEADROOM`]). Returns whether it was written.
pub fn raise(dir: &Path, used: u64) -> std::io::Result<bool> {
    let path = dir.join(FILE);
    if read(&path).is_ok_and(|held| held >= used) {
        return Ok(false);
    }
    let ahead = used.saturating_add(HEADROOM);
    crate::board::persist::write_atomic(&path, ahead.to_string().as_bytes())?;
    Ok(true)
}

/// Raises the counter whenever the gossip renews this board's identity above what it holds,
/// until the gossip stops. A write that fails is said on the console once per generation.
pub(super) async fn keep_renewals(node: Arc<Node>) {
    let Some(dir) = node.settings.counter_dir.clone() else {
        return;
    };
    let mut held = node.settings.generation;
    let mut changes = node.gossip.watch();
    while changes.changed().await.is_ok() {
        let used = node.gossip.member_generation();
        if used <= held {
            continue;
        }
        held = used;
        let into = dir.clone();
        // The write syncs the disk: off the runtime thread.
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || raise(&into, used)).await {
            node.settings.console.line(format_args!(
                "cluster: saving the renewed generation {used} in {}: {e}; the next start may \
                 reuse it",
                dir.join(FILE).display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_start_is_above_every_generation_the_board_renewed_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        let console = Console::quiet(100);
        assert_eq!(next_generation(Some(dir.path()), &console), 1);
        assert_eq!(next_generation(Some(dir.path()), &console), 2);
        // The gossip renewed the identity of the run that started at 2 up to 7: the counter is
        // written once, with room for the renewals after it.
        assert!(raise(dir.path(), 7).expect("raise"));
        for used in 8..=7 + HEADROOM {
            assert!(!raise(dir.path(), used).expect("raise"), "{used}");
        }
        assert!(!raise(dir.path(), 3).expect("raise"));
        let next = next_generation(Some(dir.path()), &console);
        assert_eq!(next, 7 + HEADROOM + 1);
        // Past the room, written again.
        assert!(raise(dir.path(), next + HEADROOM + 1).expect("raise"));
        assert!(next_generation(Some(dir.path()), &console) > next + HEADROOM + 1);
        assert!(console.recent().is_empty(), "{:?}", console.recent());
    }

    #[test]
    fn a_damaged_counter_goes_on_from_the_clock_as_without_a_data_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let console = Console::quiet(100);
        let clock = super::super::now_ms() / 1000;
        assert!(next_generation(None, &console) >= clock);
        for damaged in [vec![b'9'; 100], b"twelve".to_vec()] {
            std::fs::write(dir.path().join(FILE), damaged).expect("write");
            let next = next_generation(Some(dir.path()), &console);
            assert!(next >= clock, "{next}");
            assert_eq!(next_generation(Some(dir.path()), &console), next + 1);
        }
        assert_eq!(console.recent().len(), 2, "{:?}", console.recent());
    }
}
