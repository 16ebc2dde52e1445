//! Plain-HTTP downloads from a Debian mirror.
//!
//! Only `http://` is spoken: everything fetched is checked against the signed `InRelease`, so
//! transport security adds nothing and TLS would pull C code into the builder. Redirects are not
//! followed, so the builder talks to the configured mirror and nowhere else.

use std::io::{Read, Write};
use std::time::Duration;

/// Errors from talking to the mirror.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be made or the server answered with an error status.
    #[error("download of {url} failed: {source}")]
    Request {
        /// The URL asked for.
        url: String,
        /// What went wrong.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The body could not be read or written out.
    #[error("reading the body of {url} failed: {source}")]
    Body {
        /// The URL asked for.
        url: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The body was longer than the signed index said it would be.
    #[error("{url} is longer than the {limit} bytes the index promised")]
    TooLong {
        /// The URL asked for.
        url: String,
        /// The expected size.
        limit: u64,
    },
}

/// A small HTTP client for one mirror.
pub(crate) struct Client {
    agent: ureq::Agent,
    progress: bool,
}

impl Client {
    /// A client; `progress` prints a `bytes / total` line on stderr while downloading.
    pub(crate) fn new(progress: bool) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .max_redirects(0)
            .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.into(),
            progress,
        }
    }

    /// Downloads `url` into memory, refusing more than `limit` bytes.
    pub(crate) fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.get_to(url, limit, "", &mut out)?;
        Ok(out)
    }

    /// Streams `url` into `sink`, refusing more than `limit` bytes. A non-empty `label` turns on
    /// the progress line (if the client has progress enabled). Returns the number of bytes.
    pub(crate) fn get_to(
        &self,
        url: &str,
        limit: u64,
        label: &str,
        sink: &mut dyn Write,
    ) -> Result<u64, Error> {
        let response = self.agent.get(url).call().map_err(|e| Error::Request {
            url: url.to_string(),
            source: Box::new(e),
        })?;
        let total = response.body().content_length();
        let mut reader = response.into_body().into_reader();
        let body_err = |source| Error::Body {
            url: url.to_string(),
            source,
        };
        let show = self.progress && !label.is_empty();
        let mut buf = vec![0u8; 64 * 1024];
        let mut done: u64 = 0;
        let mut last_shown: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(body_err)?;
            if n == 0 {
                break;
            }
            done += n as u64;
            if done > limit {
                return Err(Error::TooLong {
                    url: url.to_string(),
                    limit,
                });
            }
            sink.write_all(&buf[..n]).map_err(body_err)?;
            if show && done - last_shown >= 1 << 20 {
                last_shown = done;
                show_progress(label, done, total);
            }
        }
        if show {
            show_progress(label, done, total);
            eprintln!();
        }
        Ok(done)
    }
}

fn show_progress(label: &str, done: u64, total: Option<u64>) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    match total {
        Some(t) => eprint!("\r{label}: {:.1} / {:.1} MiB", mib(done), mib(t)),
        None => eprint!("\r{label}: {:.1} MiB", mib(done)),
    }
}
