//! A recording [`Sys`] for tests: every call becomes one line in a shared log, paths relative to
//! the test's root (`mount ext4 /dev/vda4 /data`), and any call can be made to fail.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{MsFlags, Reaped, Signal, Sys, WatchdogDevice};
use crate::board::sys::Action;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The shared call log and failure rules.
#[derive(Debug, Default)]
struct Log {
    calls: Vec<String>,
    failures: Vec<(String, i32)>,
}

impl Log {
    fn record(&mut self, call: String) -> io::Result<()> {
        let fail = self
            .failures
            .iter()
            .find(|(prefix, _)| call.starts_with(prefix.as_str()))
            .map(|(_, errno)| *errno);
        self.calls.push(call);
        match fail {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(()),
        }
    }
}

/// The fake kernel.
#[derive(Debug)]
pub struct FakeSys {
    root: PathBuf,
    log: Arc<Mutex<Log>>,
    now: Mutex<SystemTime>,
    reaps: Mutex<VecDeque<Reaped>>,
    random: Mutex<u8>,
}

impl FakeSys {
    /// A fake whose paths are shown relative to `root`; the clock starts at 1970 + 1 day.
    pub fn new(root: &Path) -> FakeSys {
        FakeSys {
            root: root.to_path_buf(),
            log: Arc::default(),
            now: Mutex::new(UNIX_EPOCH + Duration::from_secs(86_400)),
            reaps: Mutex::default(),
            random: Mutex::new(1),
        }
    }

    /// Makes every later call whose log line starts with `prefix` fail with `errno`.
    pub fn fail(&self, prefix: &str, errno: i32) {
        lock(&self.log).failures.push((prefix.to_string(), errno));
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.log).calls.clone()
    }

    /// The calls so far that start with `prefix`.
    pub fn calls_starting(&self, prefix: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .collect()
    }

    /// Sets the fake clock.
    pub fn set_now(&self, time: SystemTime) {
        *lock(&self.now) = time;
    }

    /// Queues answers for [`Sys::reap`]; once empty it answers `NoChildren`.
    pub fn queue_reaps(&self, reaps: impl IntoIterator<Item = Reaped>) {
        lock(&self.reaps).extend(reaps);
    }

    /// Adds a line to the call log (for other fakes that want their calls in the same order).
    pub fn note(&self, line: impl Into<String>) {
        let _ = self.record(line.into());
    }

    fn rel(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) => format!("/{}", rel.display()),
            Err(_) => path.display().to_string(),
        }
    }

    fn record(&self, call: String) -> io::Result<()> {
        lock(&self.log).record(call)
    }
}

impl Sys for FakeSys {
    fn mount(
        &self,
        source: &str,
        target: &Path,
        fstype: &str,
        _flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        let data = data.map(|d| format!(" {d}")).unwrap_or_default();
        self.record(format!(
            "mount {fstype} {source} {}{data}",
            self.rel(target)
        ))
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        self.record(format!("unmount {}", self.rel(target)))
    }

    fn remount_read_only(&self, target: &Path) -> io::Result<()> {
        self.record(format!("remount-ro {}", self.rel(target)))
    }

    fn attach_console(&self, console: &Path) -> io::Result<()> {
        self.record(format!("console {}", self.rel(console)))
    }

    fn disable_ctrl_alt_del(&self) -> io::Result<()> {
        self.record("ctrl-alt-del off".to_string())
    }

    fn load_module(&self, path: &Path) -> io::Result<()> {
        self.record(format!("module {}", self.rel(path)))
    }

    fn set_hostname(&self, name: &str) -> io::Result<()> {
        self.record(format!("hostname {name}"))
    }

    fn add_entropy(&self, seed: &[u8]) -> io::Result<()> {
        let head: String = seed.iter().take(4).map(|b| format!("{b:02x}")).collect();
        self.record(format!("entropy {} {head}", seed.len()))
    }

    fn random_bytes(&self, buf: &mut [u8]) -> io::Result<()> {
        // Each call returns a different, recognisable pattern: n, n+1, n+2, ...
        let mut next = lock(&self.random);
        let first = *next;
        *next = next.wrapping_add(1);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = first.wrapping_add(i as u8);
        }
        self.record(format!("random {}", buf.len()))
    }

    fn now(&self) -> SystemTime {
        *lock(&self.now)
    }

    fn set_time(&self, time: SystemTime) -> io::Result<()> {
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.record(format!("set-time {secs}"))?;
        *lock(&self.now) = time;
        Ok(())
    }

    fn resize_partition(
        &self,
        disk: &Path,
        number: u32,
        start: u64,
        length: u64,
    ) -> io::Result<()> {
        self.record(format!(
            "blkpg-resize {} {number} {start} {length}",
            self.rel(disk)
        ))
    }

    fn resize_ext4(&self, mountpoint: &Path, blocks: u64) -> io::Result<()> {
        self.record(format!("ext4-resize {} {blocks}", self.rel(mountpoint)))
    }

    fn open_watchdog(&self, path: &Path) -> io::Result<Box<dyn WatchdogDevice>> {
        self.record(format!("watchdog open {}", self.rel(path)))?;
        Ok(Box::new(FakeWatchdog {
            log: Arc::clone(&self.log),
        }))
    }

    fn kill_all(&self, signal: Signal) -> io::Result<()> {
        self.record(format!("kill-all {signal:?}"))
    }

    fn reap(&self) -> io::Result<Reaped> {
        let next = lock(&self.reaps).pop_front().unwrap_or(Reaped::NoChildren);
        self.record(format!("reap {next:?}"))?;
        Ok(next)
    }

    fn sync(&self) {
        let _ = self.record("sync".to_string());
    }

    fn reboot(&self, action: Action) -> io::Result<()> {
        self.record(format!("reboot {action:?}"))
    }

    fn make_node(&self, path: &Path, mode: u32, device: u64) -> io::Result<()> {
        self.record(format!("mknod {} {mode:o} {device}", self.rel(path)))
    }

    fn move_mount(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.record(format!("move {} {}", self.rel(from), self.rel(to)))
    }

    fn change_root(&self, path: &Path) -> io::Result<()> {
        self.record(format!("chroot {}", self.rel(path)))
    }

    fn change_dir(&self, path: &Path) -> io::Result<()> {
        self.record(format!("chdir {}", self.rel(path)))
    }

    fn exec(&self, path: &Path, args: &[String]) -> io::Result<()> {
        self.record(format!("exec {} {}", self.rel(path), args.join(" ")))
    }
}

/// The watchdog the fake hands out; it logs into the same call log.
struct FakeWatchdog {
    log: Arc<Mutex<Log>>,
}

impl WatchdogDevice for FakeWatchdog {
    fn set_timeout(&mut self, seconds: u32) -> io::Result<u32> {
        lock(&self.log).record(format!("watchdog timeout {seconds}"))?;
        Ok(seconds)
    }

    fn keepalive(&mut self) -> io::Result<()> {
        lock(&self.log).record("watchdog keepalive".to_string())
    }

    fn disarm(self: Box<Self>) -> io::Result<()> {
        lock(&self.log).record("watchdog disarm".to_string())
    }
}
