//! The listening sockets the init hands over, each served by an accept loop that starts again
//! when the snapshot changes the connection limits (the loops read them once, at their start).
//!
//! Nothing is accepted before the first snapshot is in force: until then connections wait in
//! the listener's backlog (as they do while the init starts a new front door), rather than
//! being answered 404 by a front door that knows no route yet.
//!
//! Stopping an accept loop leaves its connections running: they are tasks of their own.

use std::net::TcpListener as StdListener;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control::protocol::Listener;
use crate::http::{serve, Scheme};
use crate::state::State;

/// The accept loops.
#[derive(Debug)]
pub(super) struct Listeners {
    loops: Vec<JoinHandle<()>>,
    /// The limits in force; `None` before the first snapshot.
    limits: watch::Sender<Option<baton_listen::Limits>>,
}

impl Listeners {
    /// Starts an accept loop on each descriptor, `kinds` naming them in order. A descriptor
    /// that is no listening socket fails here, before `Ready`.
    pub(super) fn start(
        kinds: &[Listener],
        fds: Vec<OwnedFd>,
        state: &Arc<State>,
    ) -> Result<Listeners, String> {
        let (limits, watcher) = watch::channel(None);
        let mut loops = Vec::new();
        for (kind, fd) in kinds.iter().zip(fds) {
            let listener = StdListener::from(fd);
            let check = listener
                .set_nonblocking(true)
                .and_then(|()| listener.local_addr());
            if let Err(e) = check {
                return Err(format!("the {kind:?} listener: {e}"));
            }
            let task = accept_loop(*kind, listener, Arc::clone(state), watcher.clone());
            loops.push(tokio::spawn(task));
        }
        Ok(Listeners { loops, limits })
    }

    /// A snapshot was put in force: the accept loops start (the first time), or start again
    /// when their limits differ.
    pub(super) fn settings_changed(&self, state: &State) {
        let limits = Some(serve::limits(&state.active().settings));
        self.limits.send_if_modified(|old| {
            let changed = *old != limits;
            *old = limits;
            changed
        });
    }

    /// Stops accepting (the init keeps the sockets: new connections wait in its backlog).
    pub(super) fn stop(&self) {
        for task in &self.loops {
            task.abort();
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves `listener` for ever, starting again on a new copy of it when the limits change.
async fn accept_loop(
    kind: Listener,
    listener: StdListener,
    state: Arc<State>,
    mut limits: watch::Receiver<Option<baton_listen::Limits>>,
) {
    let stats = Arc::new(baton_listen::Stats::default());
    loop {
        // Nothing is accepted before the first snapshot.
        if limits.wait_for(Option::is_some).await.is_err() {
            return;
        }
        limits.mark_unchanged();
        let copy = listener.try_clone().and_then(TcpListener::from_std);
        let accepting = match copy {
            Ok(accepting) => accepting,
            Err(e) => {
                // Out of descriptors: the next snapshot (or a restart) tries again.
                eprintln!("baton-front-door: the {kind:?} listener cannot be served: {e}");
                if limits.changed().await.is_err() {
                    return;
                }
                continue;
            }
        };
        let (state, stats, log) = (
            Arc::clone(&state),
            Arc::clone(&stats),
            baton_listen::stderr_log(),
        );
        let serving = async move {
            match kind {
                Listener::Http => serve::listen(accepting, Scheme::Http, state, stats, log).await,
                Listener::Https => {
                    if let Err(e) = crate::tls::accept::listen(accepting, state, stats, log).await {
                        eprintln!("baton-front-door: HTTPS cannot be served: {e}");
                    }
                }
            }
        };
        let ended = tokio::select! {
            () = serving => true,
            changed = limits.changed() => changed.is_err(),
        };
        // Only a TLS set-up error ends a loop by itself: wait for the next change rather than
        // spin.
        if ended && limits.changed().await.is_err() {
            return;
        }
    }
}
