//! Held requests on tokio's paused clock: released by a ready instance, refused beyond the
//! queue, timed out, one `Wake` for many, and a dropped wait leaves the queue right.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;
use crate::control::protocol::Instance;

const SVC: &str = "web";
const HOLD: Hold = Hold {
    queue: 3,
    timeout_ms: 10_000,
};

struct Fixture {
    holds: Arc<Holds>,
    balancer: Arc<Balancer>,
    wakes: mpsc::Receiver<String>,
}

fn fixture() -> Fixture {
    let (tx, wakes) = mpsc::channel(8);
    let balancer = Arc::new(Balancer::new());
    balancer.set(SVC, Vec::new()).unwrap();
    Fixture {
        holds: Arc::new(Holds::new(tx)),
        balancer,
        wakes,
    }
}

impl Fixture {
    fn spawn(&self, hold: Hold) -> JoinHandle<Result<(), HoldError>> {
        let (holds, balancer) = (Arc::clone(&self.holds), Arc::clone(&self.balancer));
        tokio::spawn(async move { holds.wait(SVC, hold, &balancer).await })
    }

    fn count(&self) -> u64 {
        self.holds
            .held(Instant::now().into_std())
            .first()
            .map_or(0, |h| h.count)
    }

    /// Lets the spawned waiters run until `n` wait (without moving the paused clock).
    async fn until_held(&self, n: u64) {
        for _ in 0..1000 {
            if self.count() == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{} requests held, expected {n}", self.count());
    }

    fn ready(&self) {
        let instance = Instance {
            id: "a".into(),
            addr: Ipv4Addr::new(10, 42, 0, 2),
            port: 8080,
            board: "pi-1".into(),
            ready: true,
        };
        self.balancer.set(SVC, vec![instance]).unwrap();
        self.holds.notify(SVC);
    }

    fn wakes(&mut self) -> usize {
        let mut n = 0;
        while let Ok(service) = self.wakes.try_recv() {
            assert_eq!(service, SVC);
            n += 1;
        }
        n
    }
}

#[tokio::test(start_paused = true)]
async fn a_ready_instance_releases_the_waiters_in_order() {
    let mut f = fixture();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for n in 0..3u64 {
        let (holds, balancer, order) = (
            Arc::clone(&f.holds),
            Arc::clone(&f.balancer),
            Arc::clone(&order),
        );
        tasks.push(tokio::spawn(async move {
            let held = holds.wait(SVC, HOLD, &balancer).await;
            order.lock().unwrap().push(n);
            held
        }));
        f.until_held(n + 1).await;
    }
    tokio::time::advance(Duration::from_millis(300)).await;
    let held = f.holds.held(Instant::now().into_std());
    assert_eq!((held[0].count, held[0].oldest_ms), (3, 300));

    // A notify that changes nothing releases nothing.
    f.holds.notify(SVC);
    f.until_held(3).await;
    f.ready();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(()));
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    assert!(f.holds.held(Instant::now().into_std()).is_empty());
    assert_eq!(f.wakes(), 1);

    // Ready now: no wait, no queue, no wake-up.
    assert_eq!(f.holds.wait(SVC, HOLD, &f.balancer).await, Ok(()));
    assert_eq!(f.wakes(), 0);
}

#[tokio::test(start_paused = true)]
async fn beyond_the_queue_is_full_at_once() {
    let f = fixture();
    let waiting: Vec<_> = (0..3).map(|_| f.spawn(HOLD)).collect();
    f.until_held(3).await;
    let start = Instant::now();
    assert_eq!(
        f.holds.wait(SVC, HOLD, &f.balancer).await,
        Err(HoldError::Full)
    );
    assert_eq!(Instant::now(), start, "refused without waiting");
    let none = Hold {
        queue: 0,
        timeout_ms: 1000,
    };
    assert_eq!(
        f.holds.wait("other", none, &f.balancer).await,
        Err(HoldError::Full)
    );
    f.ready();
    for task in waiting {
        assert_eq!(task.await.unwrap(), Ok(()));
    }
}

#[tokio::test(start_paused = true)]
async fn no_instance_in_time_is_a_timeout() {
    let mut f = fixture();
    let start = Instant::now();
    let hold = Hold {
        queue: 3,
        timeout_ms: 2500,
    };
    assert_eq!(
        f.holds.wait(SVC, hold, &f.balancer).await,
        Err(HoldError::Timeout)
    );
    assert_eq!(Instant::now() - start, Duration::from_millis(2500));
    assert_eq!(f.count(), 0);
    // The first wake-up, then one a second while it waited (at 1 s and 2 s).
    assert_eq!(f.wakes(), 3);

    // The next request to wait, half a second after the last wake-up, sends none...
    let short = Hold {
        queue: 3,
        timeout_ms: 100,
    };
    assert_eq!(
        f.holds.wait(SVC, short, &f.balancer).await,
        Err(HoldError::Timeout)
    );
    assert_eq!(f.wakes(), 0);
    // ...one over a second after it does.
    tokio::time::advance(Duration::from_millis(800)).await;
    assert_eq!(
        f.holds.wait(SVC, short, &f.balancer).await,
        Err(HoldError::Timeout)
    );
    assert_eq!(f.wakes(), 1);
}

#[tokio::test(start_paused = true)]
async fn many_waiters_one_wake() {
    let mut f = fixture();
    let hold = Hold {
        queue: 100,
        timeout_ms: 60_000,
    };
    let waiting: Vec<_> = (0..50).map(|_| f.spawn(hold)).collect();
    f.until_held(50).await;
    assert_eq!(f.wakes(), 1);
    tokio::time::advance(WAKE_EVERY - Duration::from_millis(1)).await;
    f.until_held(50).await;
    assert_eq!(f.wakes(), 0);
    tokio::time::advance(Duration::from_millis(1)).await;
    f.until_held(50).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(f.wakes(), 1, "the oldest waiter asks again, alone");
    f.ready();
    for task in waiting {
        assert_eq!(task.await.unwrap(), Ok(()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_wait_leaves_the_queue() {
    let mut f = fixture();
    let first = f.spawn(HOLD);
    f.until_held(1).await;
    let rest: Vec<_> = (0..2).map(|_| f.spawn(HOLD)).collect();
    f.until_held(3).await;

    // The oldest gives up: its place is free and the next oldest takes over the wake-ups.
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert_eq!(f.count(), 2);
    let again = f.spawn(HOLD);
    f.until_held(3).await;
    assert_eq!(f.wakes(), 1);
    tokio::time::advance(WAKE_EVERY).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(f.wakes(), 1);

    // A wait polled once and dropped.
    let dropped = {
        let mut wait = Box::pin(f.holds.wait(SVC, HOLD, &f.balancer));
        tokio::select! {
            biased;
            held = &mut wait => Some(held),
            () = std::future::ready(()) => None,
        }
    };
    assert_eq!(dropped, Some(Err(HoldError::Full)));
    for task in rest.into_iter().chain([again]) {
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }
    assert!(f.holds.held(Instant::now().into_std()).is_empty());
    let mut wait = Box::pin(f.holds.wait(SVC, HOLD, &f.balancer));
    tokio::select! {
        biased;
        _ = &mut wait => panic!("nothing is ready"),
        () = std::future::ready(()) => {}
    }
    assert_eq!(f.count(), 1, "the pending wait is queued");
    drop(wait);
    assert_eq!(f.count(), 0, "and dropping it leaves the queue");
}
