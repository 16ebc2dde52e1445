//! At most `MAX_CHECKS` questions to auth services are under way at once: with more requests on a
//! forward route than that, the auth service never has more open questions than the bound, and
//! the requests beyond it wait for a place (within the 5 s) instead of failing. A test binary of
//! its own: the places are shared by the whole process.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use baton_frontdoor::config::{Auth, ForwardAuth, Settings};
use baton_frontdoor::proxy::forward_auth::MAX_CHECKS;
use common::*;
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::sync::watch;

const REQUESTS: usize = MAX_CHECKS + 44;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_beyond_the_bound_wait_for_a_place() {
    let open = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let (gate, gate_rx) = watch::channel(false);
    let (o, m, a) = (Arc::clone(&open), Arc::clone(&most), Arc::clone(&arrived));
    let (auth, _auth_task) = upstream(move |_req: Request<Incoming>| {
        let (open, most, arrived) = (Arc::clone(&o), Arc::clone(&m), Arc::clone(&a));
        let mut gate = gate_rx.clone();
        async move {
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            arrived.fetch_add(1, Ordering::SeqCst);
            let _ = gate.wait_for(|open| *open).await;
            open.fetch_sub(1, Ordering::SeqCst);
            Response::builder()
                .header("remote-user", "ann")
                .body(text("ok"))
                .expect("response")
        }
    })
    .await;
    let (app, _app_task) = echo("app").await;
    let mut r = route("app", Some("app.lan"), "/");
    r.auth = Auth::Forward;
    r.forward = Some(ForwardAuth {
        url: format!("http://{auth}/verify"),
        copy_headers: Vec::new(),
        user_header: "Remote-User".into(),
        email_header: "Remote-Email".into(),
    });
    let mut snap = snapshot(vec![r], None);
    // One client makes all the requests: lift its limits above them.
    snap.settings = Settings {
        per_client_connections: 4096,
        per_client_rate: 100_000,
        per_client_burst: 100_000,
        ..Settings::default()
    };
    let door = Door::start(snap).await;
    door.instances("app", &[("a1", app, true)]);
    let addr = door.addr;
    let requests: Vec<_> = (0..REQUESTS)
        .map(|_| tokio::spawn(async move { get(addr, "app.lan", "/").await }))
        .collect();
    until(
        "the auth service holds as many questions as the bound",
        || arrived.load(Ordering::SeqCst) >= MAX_CHECKS,
    )
    .await;
    gate.send_replace(true);
    for request in requests {
        let got = request.await.expect("request task");
        assert_eq!(got.status, 200, "{got:?}");
    }
    assert_eq!(arrived.load(Ordering::SeqCst), REQUESTS);
    assert_eq!(
        most.load(Ordering::SeqCst),
        MAX_CHECKS,
        "questions open at once at the auth service"
    );
}
