//! The activator with the policy's redirect, for real: the board namespace of the policy's
//! tests (bridge, containers `a`, `b`, `c`), the activator on the bridge address.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::{Activator, Hold};
use crate::svcnet::policy::netns_tests::{apply_in, at, lab_policy, setup};
use crate::svcnet::policy::tests::{ip, service, vip};
use crate::svcnet::policy::Policy;
use baton_testnet::{require_root, wait_for, Netns};

const LIMIT: Duration = Duration::from_secs(10);

/// Calls `to` from inside `ns` on a thread: sends `hello`, then reads until the end or a
/// reset; the bytes read, or the error.
fn call(ns: &Netns, to: SocketAddrV4) -> JoinHandle<Result<Vec<u8>, ErrorKind>> {
    ns.spawn(move || {
        let mut s = TcpStream::connect_timeout(&to.into(), LIMIT).map_err(|e| e.kind())?;
        s.set_read_timeout(Some(LIMIT)).map_err(|e| e.kind())?;
        s.write_all(b"hello").map_err(|e| e.kind())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).map_err(|e| e.kind())?;
        Ok(out)
    })
}

fn result(call: JoinHandle<Result<Vec<u8>, ErrorKind>>) -> Result<Vec<u8>, ErrorKind> {
    call.join().expect("the caller thread")
}

/// An instance in `ns` on `at` echoing five bytes of one connection, then closing it.
fn echo_once(ns: &Netns, at: SocketAddrV4) -> JoinHandle<()> {
    let (ready, bound) = std::sync::mpsc::channel();
    let thread = ns.spawn(move || {
        let l = TcpListener::bind(at).unwrap_or_else(|e| panic!("binding {at}: {e}"));
        ready.send(()).expect("test alive");
        let (mut s, _) = l.accept().expect("accept");
        s.set_read_timeout(Some(LIMIT)).expect("timeout");
        let mut word = [0u8; 5];
        s.read_exact(&mut word).expect("read the caller's bytes");
        s.write_all(&word).expect("echo");
    });
    bound.recv_timeout(LIMIT).expect("instance listening");
    thread
}

/// `b` (VIP 3) and `d`, `e` (VIPs 5, 6, no instance) activate; `a` may call all three.
fn sleeping() -> Policy {
    let mut p = lab_policy();
    p.services[0].allow = vec!["b".into(), "d".into(), "e".into()];
    p.services[1].activate = true;
    p.services[1].instances[0].healthy = false;
    for (name, v) in [("d", 5), ("e", 6)] {
        let mut s = service(name, vip(v), &[], &[]);
        s.activate = true;
        p.services.push(s);
    }
    p
}

/// The activator running in the board namespace until `stop` is sent.
struct Running {
    activator: Arc<Activator>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    board: &Netns,
    policy: watch::Receiver<Option<Arc<Policy>>>,
    wakes: mpsc::Sender<String>,
) -> Running {
    let (ready, started) = std::sync::mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = board.spawn_async(move || {
        Box::pin(async move {
            let activator = Activator::start(ip(1), policy, wakes).expect("activator started");
            activator.set_holds(BTreeMap::from([
                (
                    "d".to_string(),
                    Hold {
                        queue: 1,
                        timeout: Duration::from_secs(60),
                    },
                ),
                (
                    "e".to_string(),
                    Hold {
                        queue: 10,
                        timeout: Duration::from_millis(300),
                    },
                ),
            ]));
            let activator = Arc::new(activator);
            ready.send(Arc::clone(&activator)).expect("test alive");
            let _ = stopped.await;
        })
    });
    let activator = started.recv_timeout(LIMIT).expect("activator running");
    Running {
        activator,
        stop: Some(stop),
        thread: Some(thread),
    }
}

fn held(r: &Running, service: &str) -> u32 {
    r.activator.held().get(service).copied().unwrap_or(0)
}

#[test]
fn a_call_to_a_sleeping_service_is_held_woken_and_handed_over() {
    require_root();
    let lab = setup("act");
    let [a, b, c] = &lab.containers[..] else {
        panic!("three containers")
    };
    let p = sleeping();
    apply_in(&lab.board, &p);
    let (policy, watched) = watch::channel(Some(Arc::new(p.clone())));
    let (wake, mut wakes) = mpsc::channel(16);
    let r = run(&lab.board, watched, wake);

    // `c` may not call `b`: reset by the activator, nothing woken.
    assert_eq!(
        result(call(c, at(vip(3), 80))),
        Err(ErrorKind::ConnectionReset)
    );
    assert_eq!(wakes.try_recv(), Err(mpsc::error::TryRecvError::Empty));

    // `a` calls `b`: held, `b` woken.
    let caller = call(a, at(vip(3), 80));
    let woken = wait_for("a wake", LIMIT, || wakes.try_recv().ok());
    assert_eq!(woken, "b");
    wait_for("the call held", LIMIT, || {
        (held(&r, "b") == 1).then_some(())
    });

    // `b`'s instance comes up and is healthy in the policy applied: the bytes arrive.
    let instance = echo_once(b, at(ip(3), 8080));
    let mut awake = p.clone();
    awake.services[1].instances[0].healthy = true;
    apply_in(&lab.board, &awake);
    policy.send_replace(Some(Arc::new(awake)));
    assert_eq!(result(caller), Ok(b"hello".to_vec()));
    instance.join().expect("the instance");

    // `d` holds one call: a second is reset at once while the first stays held.
    let first = call(a, at(vip(5), 80));
    wait_for("d's call held", LIMIT, || {
        (held(&r, "d") == 1).then_some(())
    });
    assert_eq!(
        result(call(a, at(vip(5), 80))),
        Err(ErrorKind::ConnectionReset)
    );
    assert_eq!(held(&r, "d"), 1, "the first call is still held");

    // `e` holds for 300 ms (its wake shows it was held): then the call is reset.
    let late = call(a, at(vip(6), 80));
    wait_for("e's wake", LIMIT, || {
        std::iter::from_fn(|| wakes.try_recv().ok()).find(|w| w == "e")
    });
    assert_eq!(result(late), Err(ErrorKind::ConnectionReset));

    // Stopping the activator drops d's held call, its bytes unread: a reset.
    drop(r);
    assert_eq!(result(first), Err(ErrorKind::ConnectionReset));
}
