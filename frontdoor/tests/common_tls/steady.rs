//! A well-behaved client running beside an attack: GETs over HTTPS from 127.0.0.2 (so the
//! attacker's per-address limits are not its own), a new connection every few requests so
//! handshakes are tested too, each answer counted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use super::{connect_from, h1, https_get, read, Hello, Pki, PATIENCE};

/// Requests on one connection before the next handshake.
const PER_CONNECTION: u64 = 10;
/// The pause between its requests: a steady client, not a flood (unpaced, it made thousands
/// of connections a test, whose TIME_WAIT entries then crowded the loopback ports of the
/// tests that run next).
const PACE: std::time::Duration = std::time::Duration::from_millis(10);

/// The client's tally.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failures: Mutex<Vec<String>>,
}

/// The running client.
pub struct Steady {
    tally: Arc<Tally>,
    task: JoinHandle<()>,
}

impl Drop for Steady {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Steady {
    /// Starts GETting `https://host/` at `addr` (the certificate must cover `host`).
    pub fn start(pki: &Arc<Pki>, addr: SocketAddr, host: &'static str) -> Steady {
        let tally = Arc::new(Tally::default());
        let counted = Arc::clone(&tally);
        let pki = Arc::clone(pki);
        let task = tokio::spawn(async move {
            let hello = Hello {
                sni: Some(host),
                verify_as: host,
                alpn: &[b"http/1.1"],
            };
            loop {
                let tls = match connect_from(&pki, addr, hello, [127, 0, 0, 2]).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        counted.fail(format!("handshake: {e}"));
                        continue;
                    }
                };
                let mut sender = h1(tls).await;
                for _ in 0..PER_CONNECTION {
                    tokio::time::sleep(PACE).await;
                    let sent = tokio::time::timeout(PATIENCE, async {
                        sender.ready().await?;
                        sender.send_request(https_get(host, "/")).await
                    })
                    .await;
                    match sent {
                        Ok(Ok(response)) => {
                            let got = read(response).await;
                            if got.status == 200 {
                                counted.ok.fetch_add(1, Ordering::SeqCst);
                            } else {
                                counted.fail(format!("status {}: {}", got.status, got.body));
                            }
                        }
                        Ok(Err(e)) => counted.fail(format!("request: {e}")),
                        Err(_) => counted.fail("no answer in time".into()),
                    }
                }
            }
        });
        Steady { tally, task }
    }

    /// 200s so far.
    pub fn ok(&self) -> u64 {
        self.tally.ok.load(Ordering::SeqCst)
    }

    /// What went wrong so far.
    pub fn failures(&self) -> Vec<String> {
        self.tally
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until `more` 200s came after this call, with a deadline, and checks that nothing
    /// failed.
    pub async fn still_served(&self, more: u64) {
        let from = self.ok();
        // A failure ends the wait at once, so the assertion below names it.
        crate::common::until("the steady client's 200s", || {
            self.ok() >= from + more || !self.failures().is_empty()
        })
        .await;
        let failures = self.failures();
        assert!(
            failures.is_empty(),
            "the steady client failed: {failures:?}"
        );
    }
}

impl Tally {
    fn fail(&self, what: String) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: the first ones say enough.
        if failures.len() < 20 {
            failures.push(what);
        }
    }
}
