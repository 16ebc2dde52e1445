//! The access log: one line per request that matched a route, queued for the init (which puts
//! it into the service's log). The queue is bounded; lines beyond it are counted, not kept, so
//! a flood of requests costs a counter, not memory.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::control::protocol::{AccessLine, MAX_ACCESS_PATH};

/// Lines queued at most.
pub const MAX_QUEUED: usize = 4096;
/// Bytes of a method kept.
const MAX_METHOD: usize = 32;

#[derive(Debug, Default)]
struct Queue {
    lines: VecDeque<AccessLine>,
    dropped: u64,
}

/// The queue of access lines.
#[derive(Debug, Default)]
pub struct AccessLog {
    queue: Mutex<Queue>,
}

impl AccessLog {
    /// Queues `line` (its path and method cut to their bounds), or counts it dropped.
    pub fn push(&self, mut line: AccessLine) {
        cut(&mut line.path, MAX_ACCESS_PATH);
        cut(&mut line.method, MAX_METHOD);
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.lines.len() >= MAX_QUEUED {
            queue.dropped += 1;
            return;
        }
        queue.lines.push_back(line);
    }

    /// Up to `max` lines, oldest first, and the count dropped since the last call; `None` when
    /// there is nothing to say.
    pub fn take(&self, max: usize) -> Option<(Vec<AccessLine>, u64)> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.lines.is_empty() && queue.dropped == 0 {
            return None;
        }
        let n = queue.lines.len().min(max);
        let lines = queue.lines.drain(..n).collect();
        Some((lines, std::mem::take(&mut queue.dropped)))
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(path: &str) -> AccessLine {
        AccessLine {
            route: "web".into(),
            method: "GET".into(),
            host: "web.lan".into(),
            path: path.into(),
            status: 200,
            ms: 1,
            identity: None,
            instance: Some("web-1#1".into()),
            request_id: "id".into(),
        }
    }

    #[test]
    fn lines_past_the_queue_are_counted_and_long_paths_cut() {
        let log = AccessLog::default();
        for _ in 0..MAX_QUEUED + 3 {
            log.push(line("/"));
        }
        let (lines, dropped) = log.take(10).expect("lines");
        assert_eq!((lines.len(), dropped), (10, 3));
        let (rest, dropped) = log.take(usize::MAX).expect("the rest");
        assert_eq!((rest.len(), dropped), (MAX_QUEUED - 10, 0));
        assert!(log.take(1).is_none());
        log.push(line(&"é".repeat(MAX_ACCESS_PATH)));
        let (lines, _) = log.take(1).expect("a line");
        assert!(lines[0].path.len() <= MAX_ACCESS_PATH);
    }
}
