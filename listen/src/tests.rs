use super::*;
use baton_testnet::eventually;
use std::net::Ipv4Addr;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// Fails `errors` times with EMFILE, then accepts one connection, then waits for ever; reports
/// the time of each call.
struct Exhausted {
    errors: usize,
    calls: mpsc::UnboundedSender<Instant>,
}

impl Acceptor for Exhausted {
    type Stream = ();
    fn accept(&mut self) -> impl Future<Output = io::Result<((), SocketAddr)>> + Send {
        let _ = self.calls.send(Instant::now());
        let result = if self.errors > 0 {
            self.errors -= 1;
            Some(Err(io::Error::from_raw_os_error(libc::EMFILE)))
        } else if self.errors == 0 {
            self.errors = usize::MAX;
            Some(Ok(((), SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 1)))))
        } else {
            None
        };
        async move {
            match result {
                Some(r) => {
                    tokio::task::yield_now().await;
                    r
                }
                None => std::future::pending().await,
            }
        }
    }
}

fn collecting_log() -> (Log, Arc<Mutex<Vec<String>>>) {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&lines);
    let log: Log = Arc::new(move |m| lock(&sink).push(m.to_string()));
    (log, lines)
}

const LIMITS: Limits = Limits {
    max_connections: 4,
    per_source: 2,
    rate: Rate {
        burst: 100,
        per_second: 100,
    },
    max_sources: 16,
};

#[tokio::test(start_paused = true)]
async fn accept_errors_back_off_instead_of_spinning() {
    const ERRORS: usize = 12;
    let (tx, mut calls) = mpsc::unbounded_channel();
    let (log, lines) = collecting_log();
    let stats = Arc::new(Stats::default());
    let fake = Exhausted {
        errors: ERRORS,
        calls: tx,
    };
    let task = tokio::spawn(serve(
        fake,
        "test",
        LIMITS,
        Arc::clone(&stats),
        log,
        |(), _| async {},
    ));
    let mut at = Vec::new();
    // The failing calls, the one that succeeds, and the next (which waits).
    while at.len() < ERRORS + 2 {
        at.push(calls.recv().await.expect("the loop runs"));
    }
    task.abort();
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, gap) in gaps.iter().take(ERRORS).enumerate() {
        let expected = (BACKOFF_MIN * 2u32.pow(i as u32)).min(BACKOFF_MAX);
        assert!(
            *gap >= expected,
            "call {i}: retried after {gap:?}, not {expected:?}: {gaps:?}"
        );
    }
    assert!(
        gaps[ERRORS] < BACKOFF_MIN,
        "no sleep after a success: {gaps:?}"
    );
    assert_eq!(stats.accept_errors.load(Ordering::Relaxed), ERRORS as u64);
    let lines = lock(&lines).clone();
    assert_eq!(
        lines.len(),
        2,
        "one line for the burst, one for the recovery: {lines:?}"
    );
    assert!(
        lines[0].contains("accept failed") && lines[0].contains("Too many open files"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains(&format!("after {ERRORS} failed")),
        "{lines:?}"
    );
}

/// Connects to `to` from the loopback address `from`.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((from, 0))).expect("bind");
    socket.connect(to).await.expect("connect")
}

/// True once the server closed `stream` (EOF or reset) within 5 s.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn sources_are_held_to_their_share_and_the_listener_to_its_cap() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(Stats::default());
    let (log, _) = collecting_log();
    // Each connection is held until the client closes it.
    let task = tokio::spawn(serve(
        listener,
        "test",
        LIMITS,
        Arc::clone(&stats),
        log,
        |mut s: TcpStream, _| async move {
            let mut buf = [0u8; 16];
            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
        },
    ));
    let a = Ipv4Addr::new(127, 0, 0, 2);
    let _held = [connect_from(a, addr).await, connect_from(a, addr).await];
    let mut third = connect_from(a, addr).await;
    assert!(
        closed_by_server(&mut third).await,
        "a third connection from one source is closed"
    );
    assert_eq!(stats.refused_per_source.load(Ordering::Relaxed), 1);
    let b = Ipv4Addr::new(127, 0, 0, 3);
    let _also = [connect_from(b, addr).await, connect_from(b, addr).await];
    eventually("four open", Duration::from_secs(5), || {
        stats.open.load(Ordering::Relaxed) == 4
    })
    .await;
    let mut over = connect_from(Ipv4Addr::new(127, 0, 0, 4), addr).await;
    assert!(
        closed_by_server(&mut over).await,
        "the fifth connection is over the cap"
    );
    assert_eq!(stats.refused_full.load(Ordering::Relaxed), 1);
    drop(_also);
    eventually("slots freed", Duration::from_secs(5), || {
        stats.open.load(Ordering::Relaxed) == 2
    })
    .await;
    let mut again = connect_from(Ipv4Addr::new(127, 0, 0, 4), addr).await;
    assert!(
        !closed_by_server_quickly(&mut again).await,
        "a freed slot serves the next client"
    );
    task.abort();
}

#[tokio::test]
async fn a_source_opening_too_fast_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(Stats::default());
    let (log, _) = collecting_log();
    let limits = Limits {
        rate: Rate {
            burst: 3,
            per_second: 1,
        },
        max_connections: 100,
        per_source: 100,
        ..LIMITS
    };
    let task = tokio::spawn(serve(
        listener,
        "test",
        limits,
        Arc::clone(&stats),
        log,
        |_: TcpStream, _| async {},
    ));
    let from = Ipv4Addr::new(127, 0, 0, 5);
    for _ in 0..6 {
        drop(connect_from(from, addr).await);
    }
    eventually("three refusals", Duration::from_secs(5), || {
        stats.refused_rate.load(Ordering::Relaxed) >= 3
    })
    .await;
    assert_eq!(
        stats.refused_rate.load(Ordering::Relaxed),
        3,
        "the burst is three"
    );
    task.abort();
}

/// True if the server closes `stream` within 200 ms (a refused connection is closed at once).
async fn closed_by_server_quickly(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Set in the child process of [`a_real_emfile_is_backed_off`].
const EMFILE_CHILD: &str = "BATON_TEST_EMFILE_CHILD";

/// A real `EMFILE`: a child process (this test, run again) lowers its open-file limit so
/// that no more connection can be accepted, then serves; the parent connects a few times.
/// The child checks that failed accepts are spaced by the back-off and logged once.
#[test]
fn a_real_emfile_is_backed_off() {
    if std::env::var_os(EMFILE_CHILD).is_some() {
        return emfile_child();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port_file = dir.path().join("port");
    let exe = std::env::current_exe().expect("test binary");
    let child = std::process::Command::new(exe)
        .args([
            "--exact",
            "tests::a_real_emfile_is_backed_off",
            "--test-threads=1",
        ])
        .env(EMFILE_CHILD, &port_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let port: u16 = baton_testnet::wait_for("the child's port", Duration::from_secs(20), || {
        std::fs::read_to_string(&port_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    let _held: Vec<std::net::TcpStream> = (0..8)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    // The child ends by itself once it has seen enough failed accepts (or timed out).
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "the child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn emfile_child() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let first_error: Arc<Mutex<Option<Instant>>> = Arc::default();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let (seen, sink) = (Arc::clone(&first_error), Arc::clone(&lines));
        let log: Log = Arc::new(move |m| {
            lock(&seen).get_or_insert_with(Instant::now);
            lock(&sink).push(m.to_string());
        });
        let stats = Arc::new(Stats::default());
        let held = |s: TcpStream, _| async move {
            let _s = s;
            std::future::pending::<()>().await
        };
        // Spawned but not run before the first await below, when the table is full.
        tokio::spawn(serve(
            listener,
            "test",
            LIMITS,
            Arc::clone(&stats),
            log,
            held,
        ));
        let port_file = std::env::var_os(EMFILE_CHILD).expect("set by the parent");
        std::fs::write(port_file, port.to_string()).expect("write the port");
        let _filler = leave_one_free_descriptor();
        eventually("six failed accepts", Duration::from_secs(20), || {
            stats.accept_errors.load(Ordering::Relaxed) >= 6
        })
        .await;
        let since_first = lock(&first_error)
            .expect("the failure was logged")
            .elapsed();
        // Five sleeps (5, 10, 20, 40, 80 ms) separate the first failure from the sixth.
        assert!(
            since_first >= Duration::from_millis(150),
            "six failed accepts within {since_first:?}: the loop spins"
        );
        let lines = lock(&lines).clone();
        assert_eq!(lines.len(), 1, "one line per burst: {lines:?}");
        assert!(lines[0].contains("Too many open files"), "{lines:?}");
        assert!(
            stats.open.load(Ordering::Relaxed) >= 1,
            "nothing was accepted first"
        );
    });
}

/// Lowers the open-file limit to about the descriptors open now and fills every free slot
/// below it but one, so that exactly one more descriptor can be opened. Counting alone is not
/// enough: the table has holes (a test run by cargo inherits descriptors numbered far above the
/// others), and every hole below the limit would be one more accepted connection. Returns the
/// fillers, which must stay open.
fn leave_one_free_descriptor() -> Vec<std::fs::File> {
    // The directory's own descriptor is counted, so there is at least one free slot below.
    let open = std::fs::read_dir("/proc/self/fd").expect("fds").count() as u64;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit the call fills in.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(got, 0, "getrlimit");
    limit.rlim_cur = open;
    // SAFETY: `limit` is a valid rlimit that the call only reads.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let mut fillers = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => fillers.push(file),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
    }
    assert!(fillers.pop().is_some(), "no free descriptor below {open}");
    fillers
}
