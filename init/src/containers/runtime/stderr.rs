//! The runtime helper's own messages (its standard error, and that of libcontainer's
//! intermediate processes) reach the init's console line by line, so that what the console
//! keeps, and the API serves, has them too. Lines are cut at [`MAX_LINE`] bytes; bytes that are
//! not UTF-8 are shown as replacement characters.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::io::AsyncReadExt;

use crate::board::console::Console;

/// Longest line passed on; the rest of a longer line is dropped and marked.
pub const MAX_LINE: usize = 4096;

/// Reads `pipe` until its writers are gone and prints each line as `runtime helper: <line>`.
pub fn forward(pipe: OwnedFd, console: Arc<Console>) -> std::io::Result<()> {
    forward_as(pipe, console, "runtime helper")
}

/// [`forward`] with another name before each line (the front door's).
pub fn forward_as(pipe: OwnedFd, console: Arc<Console>, name: &'static str) -> std::io::Result<()> {
    let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(pipe)?;
    tokio::spawn(async move {
        let mut reader = receiver;
        let mut lines = Lines::default();
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // The helper is gone (its writes fail quietly from here on).
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    for line in lines.push(&buf[..n]) {
                        console.line(format_args!("{name}: {line}"));
                    }
                }
            }
        }
        if let Some(line) = lines.finish() {
            console.line(format_args!("{name}: {line}"));
        }
    });
    Ok(())
}

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
    cut: bool,
}

impl Lines {
    /// Takes more bytes; returns the lines they complete.
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut done = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                done.push(self.take());
            } else if self.partial.len() < MAX_LINE {
                self.partial.push(b);
            } else {
                self.cut = true;
            }
        }
        done
    }

    /// What is left after the stream ended, if anything.
    fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty() || self.cut).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let mut line = String::from_utf8_lossy(&self.partial).into_owned();
        if std::mem::take(&mut self.cut) {
            line.push_str(" [cut]");
        }
        self.partial.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_cut_and_kept_across_reads() {
        let mut lines = Lines::default();
        assert!(lines.push(b"first li").is_empty());
        assert_eq!(lines.push(b"ne\nsecond\n"), ["first line", "second"]);
        let long = vec![b'x'; MAX_LINE + 10];
        assert!(lines.push(&long).is_empty());
        let out = lines.push(b"\n\xff tail");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), MAX_LINE + " [cut]".len());
        assert!(out[0].ends_with("x [cut]"));
        assert_eq!(lines.finish().as_deref(), Some("\u{fffd} tail"));
        assert_eq!(lines.finish(), None);
    }

    #[tokio::test]
    async fn a_pipe_s_lines_reach_the_console() {
        use std::io::Write;
        let (read, write) = nix::unistd::pipe().expect("pipe");
        let console = Arc::new(Console::quiet(10));
        forward(read, Arc::clone(&console)).expect("forward");
        let mut writer = std::fs::File::from(write);
        writer
            .write_all(b"cleaned up 2 containers\nno newline")
            .expect("write");
        drop(writer);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !console.has_line("baton: runtime helper: no newline") {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                console.recent()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(console.has_line("baton: runtime helper: cleaned up 2 containers"));
    }
}
