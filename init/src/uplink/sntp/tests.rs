//! The sync loop against SNTP servers on loopback.

use std::sync::Mutex;

use super::*;
use packet::PACKET_LEN;

const SEC: i128 = 1_000_000_000;

/// Real time plus whatever it has been stepped by; records the steps.
#[derive(Default)]
struct FakeClock {
    steps: Mutex<Vec<i128>>,
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        let moved: i128 = self.steps.lock().map(|s| s.iter().sum()).unwrap_or(0);
        let t = nanos(SystemClock.now()) + moved;
        Duration::from_nanos(t as u64)
    }
    fn step(&self, offset_ns: i128) -> io::Result<()> {
        self.steps
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .push(offset_ns);
        Ok(())
    }
}

/// An SNTP server on `ip` (a loopback address) whose clock is `ahead` seconds off the real one
/// (changeable while it runs); it first sends a reply that does not match the request, then
/// the right one. Counts requests.
struct Server {
    addr: SocketAddr,
    ahead: Arc<Mutex<i64>>,
    served: Arc<Mutex<u32>>,
}

impl Server {
    async fn start(ip: [u8; 4], ahead: i64) -> Server {
        let socket = UdpSocket::bind((Ipv4Addr::from(ip), 0))
            .await
            .expect("bind loopback");
        let addr = socket.local_addr().expect("local addr");
        let (ahead, served) = (Arc::new(Mutex::new(ahead)), Arc::new(Mutex::new(0u32)));
        let (offset, count) = (Arc::clone(&ahead), Arc::clone(&served));
        tokio::spawn(async move {
            let mut buf = [0u8; 128];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                assert_eq!(n, PACKET_LEN);
                let secs = offset.lock().map(|o| *o).unwrap_or(0);
                let real = nanos(SystemClock.now()) + i128::from(secs) * SEC;
                let now = Timestamp::from_unix(Duration::from_nanos(real as u64));
                let mut p = [0u8; PACKET_LEN];
                p[0] = 0x24;
                p[1] = 1;
                p[32..40].copy_from_slice(&now.0.to_be_bytes());
                p[40..48].copy_from_slice(&now.0.to_be_bytes());
                let _ = socket.send_to(&p, from).await; // originate 0: must be ignored
                p[24..32].copy_from_slice(&buf[40..48]);
                let _ = socket.send_to(&p, from).await;
                if let Ok(mut c) = count.lock() {
                    *c += 1;
                }
            }
        });
        Server {
            addr,
            ahead,
            served,
        }
    }

    fn set_ahead(&self, secs: i64) {
        if let Ok(mut a) = self.ahead.lock() {
            *a = secs;
        }
    }

    fn served(&self) -> u32 {
        self.served.lock().map(|c| *c).unwrap_or(0)
    }
}

/// Short intervals so the loop runs several rounds within a test.
fn fast_schedule() -> Schedule {
    Schedule {
        timeout: Duration::from_secs(2),
        interval: Duration::from_millis(50),
        min_retry: Duration::from_millis(50),
        max_retry: Duration::from_millis(200),
        limits: Limits::default(),
    }
}

/// A sync loop over `servers` on a fake clock, with the floor an hour before now.
struct Loop {
    clock: Arc<FakeClock>,
    console: Arc<Console>,
    status: Arc<BoardStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl Loop {
    fn start(servers: Vec<String>) -> Loop {
        let clock = Arc::new(FakeClock::default());
        let console = Arc::new(Console::quiet(100));
        let status = Arc::new(BoardStatus::default());
        let floor = SystemClock.now() - Duration::from_secs(3600);
        let guard = Guard::new(Limits::default(), floor);
        let (c, k, s) = (clock.clone(), console.clone(), status.clone());
        let task = tokio::spawn(async move {
            run_with(servers, Vec::new(), &*c, fast_schedule(), guard, &k, &s).await
        });
        Loop {
            clock,
            console,
            status,
            task,
        }
    }

    fn steps(&self) -> Vec<i128> {
        self.clock
            .steps
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    async fn wait_for_line(&self, starts: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !self.console.recent().iter().any(|l| l.starts_with(starts)) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no line {starts:?}: {:?}",
                self.console.recent()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn steps_a_clock_that_is_off_once_then_leaves_it_alone() {
    let server = Server::start([127, 0, 0, 1], 100).await;
    // A dead server first: the loop must move on to the next one.
    let sync = Loop::start(vec!["127.0.0.1:1".to_string(), server.addr.to_string()]);
    wait_until("server not queried four times", || server.served() >= 4).await;
    sync.task.abort();
    let steps = sync.steps();
    assert_eq!(steps.len(), 1, "stepped once, then in sync: {steps:?}");
    assert!(
        (steps[0] - 100 * SEC).abs() < SEC / 2,
        "step {} ns",
        steps[0]
    );
    sync.wait_for_line("baton: sntp: stepped the clock by +100.")
        .await;
    assert!(sync.status.clock().synced);
}

#[tokio::test]
async fn once_synced_one_server_cannot_move_the_clock_by_an_hour() {
    let server = Server::start([127, 0, 0, 2], 0).await;
    let sync = Loop::start(vec![server.addr.to_string()]);
    wait_until("never synced", || sync.status.clock().synced).await;
    server.set_ahead(3600);
    sync.wait_for_line("baton: sntp: refused a step of +3600.")
        .await;
    sync.task.abort();
    assert!(sync.steps().is_empty(), "stepped: {:?}", sync.steps());
    let clock = sync.status.clock();
    assert!(clock.refused_steps >= 1);
    assert!(
        clock
            .note
            .is_some_and(|n| n.contains("only one time server")),
        "a lone server is reported"
    );
}

#[tokio::test]
async fn two_servers_that_agree_can_move_a_synced_clock() {
    let a = Server::start([127, 0, 0, 3], 0).await;
    let b = Server::start([127, 0, 0, 4], 0).await;
    let sync = Loop::start(vec![a.addr.to_string(), b.addr.to_string()]);
    wait_until("never synced", || sync.status.clock().synced).await;
    a.set_ahead(3600);
    b.set_ahead(3600);
    wait_until("not stepped", || !sync.steps().is_empty()).await;
    sync.task.abort();
    let steps = sync.steps();
    assert!((steps[0] - 3600 * SEC).abs() < SEC, "step {steps:?}");
    assert_eq!(sync.status.clock().note, None, "two servers are known");
}

#[tokio::test]
async fn nobody_sets_the_clock_before_the_saved_time() {
    let a = Server::start([127, 0, 0, 5], -7200).await;
    let b = Server::start([127, 0, 0, 6], -7200).await;
    let sync = Loop::start(vec![a.addr.to_string(), b.addr.to_string()]);
    sync.wait_for_line("baton: sntp: refused a step of -7200.")
        .await;
    sync.task.abort();
    assert!(sync.steps().is_empty(), "stepped: {:?}", sync.steps());
    assert!(sync
        .console
        .recent()
        .iter()
        .any(|l| l.contains("before the saved time")));
}

#[tokio::test]
async fn without_any_server_it_stops_at_once_and_leaves_the_clock() {
    let clock = FakeClock::default();
    let console = Console::quiet(100);
    let status = BoardStatus::default();
    let guard = Guard::new(Limits::default(), Duration::ZERO);
    tokio::time::timeout(
        Duration::from_secs(10),
        run_with(
            Vec::new(),
            Vec::new(),
            &clock,
            fast_schedule(),
            guard,
            &console,
            &status,
        ),
    )
    .await
    .expect("run_with returns when there is nothing to ask");
    assert!(clock.steps.lock().map(|s| s.is_empty()).unwrap_or(false));
    assert!(console.has_line(
        "baton: sntp: no time servers configured or offered by DHCP; keeping the saved time"
    ));
}
