//! Console output: every message is one `baton: ...` line on the kernel console (file
//! descriptor 1 once the boot sequence has attached `/dev/console`), and the most recent lines
//! are kept in memory for the API.

use std::collections::VecDeque;
use std::fmt::Display;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

/// How many lines [`Console::recent`] keeps by default.
pub const DEFAULT_CAPACITY: usize = 1000;

/// The console and its ring of recent lines.
#[derive(Debug)]
pub struct Console {
    ring: Mutex<VecDeque<String>>,
    capacity: usize,
    echo: bool,
}

impl Console {
    /// A console that prints to standard output and keeps `capacity` lines.
    pub fn new(capacity: usize) -> Console {
        Console {
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(DEFAULT_CAPACITY))),
            capacity,
            echo: true,
        }
    }

    /// A console that only keeps lines in memory (for tests).
    pub fn quiet(capacity: usize) -> Console {
        Console {
            echo: false,
            ..Console::new(capacity)
        }
    }

    fn ring(&self) -> MutexGuard<'_, VecDeque<String>> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prints `baton: <message>` and remembers it. Write errors are ignored: there is nowhere
    /// else to report them.
    pub fn line(&self, message: impl Display) {
        let line = format!("baton: {message}");
        if self.echo {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(format!("{line}\n").as_bytes());
            let _ = out.flush();
        }
        let mut ring = self.ring();
        if self.capacity == 0 {
            return;
        }
        while ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back(line);
    }

    /// The most recent lines, oldest first.
    pub fn recent(&self) -> Vec<String> {
        self.ring().iter().cloned().collect()
    }

    /// Whether some remembered line equals `line` exactly.
    pub fn has_line(&self, line: &str) -> bool {
        self.ring().iter().any(|l| l == line)
    }
}

/// Prints panics as `baton: internal error: ...` on `console` (the part that panicked is
/// contained by its caller; this only makes the bug visible).
pub fn install_panic_hook(console: Arc<Console>) {
    std::panic::set_hook(Box::new(move |info| {
        console.line(format_args!("internal error: {info}"));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines() {
        let c = Console::quiet(2);
        c.line("one");
        c.line(format_args!("t{}", "wo"));
        c.line("three");
        assert_eq!(c.recent(), vec!["baton: two", "baton: three"]);
        assert!(c.has_line("baton: three"));
        assert!(!c.has_line("baton: one"));
    }
}
