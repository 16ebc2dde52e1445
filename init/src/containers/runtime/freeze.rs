//! Freezing and thawing a container through its cgroup v2 `cgroup.freeze`.
//!
//! A frozen cgroup's processes stop where they are and keep their memory; thawing resumes them
//! at once. Writing the file only asks: the kernel reports the freeze done in `cgroup.events`
//! (`frozen 1`), which takes a moment for processes that are in the middle of something, so the
//! freeze waits for it up to [`DEADLINE`]. A freeze that does not complete in time is undone, so
//! a failed freeze leaves the container running. The init writes these files itself (it is
//! root and the cgroup tree is its own): no call to the helper is needed.
//!
//! Signals: a frozen process handles no signal until it is thawed, except SIGKILL, which the
//! kernel delivers to frozen processes too. So a graceful stop thaws first.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a freeze may take to show in `cgroup.events`.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// The first pause between reads of `cgroup.events`; it doubles up to [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(1);
const POLL_MAX: Duration = Duration::from_millis(50);
/// `cgroup.events` is a few short lines; more is not a cgroup file.
const EVENTS_MAX: u64 = 4096;

/// Freezing or thawing failed.
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    /// `cgroup.freeze` could not be written (no such cgroup, or no freezer in this kernel).
    #[error("writing {value} to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// `cgroup.events` could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `cgroup.events` did not show the wanted state in time (a freeze is undone then).
    #[error("{} did not show frozen {want} within {DEADLINE:?}", path.display())]
    Timeout {
        /// The file.
        path: PathBuf,
        /// The state waited for (1 frozen, 0 thawed).
        want: u8,
    },
}

/// Freezes (`frozen`) or thaws the cgroup at `cgroup` and waits until the kernel says it is.
pub async fn set(cgroup: &Path, frozen: bool) -> Result<(), FreezeError> {
    write(cgroup, frozen)?;
    match wait(cgroup, frozen).await {
        Ok(()) => Ok(()),
        Err(e) => {
            if frozen {
                // Leave it running rather than half frozen; the error says what happened.
                let _ = write(cgroup, false);
            }
            Err(e)
        }
    }
}

fn write(cgroup: &Path, frozen: bool) -> Result<(), FreezeError> {
    let path = cgroup.join("cgroup.freeze");
    let value = if frozen { "1" } else { "0" };
    std::fs::write(&path, value).map_err(|source| FreezeError::Write {
        path,
        value,
        source,
    })
}

async fn wait(cgroup: &Path, frozen: bool) -> Result<(), FreezeError> {
    let path = cgroup.join("cgroup.events");
    let want = u8::from(frozen);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut pause = POLL_FIRST;
    loop {
        let text = read_bounded(&path).map_err(|source| FreezeError::Read {
            path: path.clone(),
            source,
        })?;
        if frozen_value(&text) == Some(want) {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(FreezeError::Timeout { path, want });
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(POLL_MAX);
    }
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(EVENTS_MAX)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The `frozen` line of a `cgroup.events` text: `Some(1)` frozen, `Some(0)` not.
fn frozen_value(events: &str) -> Option<u8> {
    events.lines().find_map(|line| match line.split_once(' ') {
        Some(("frozen", "1")) => Some(1),
        Some(("frozen", "0")) => Some(0),
        _ => None,
    })
}

#[cfg(test)]
#[path = "freeze_tests.rs"]
mod tests;
