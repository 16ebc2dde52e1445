//! The helper's serve loop and the client together, over a real socketpair, with a fake
//! backend that runs plain host processes instead of containers (no root needed).

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::backend::{self, Backend};
use super::protocol::{self, ToInit};
use super::{helper, ContainerConfig, ContainerRequest, Error, Event, Exit, ExitStatus, Runtime};

const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Record {
    removed: Vec<String>,
    oom: HashSet<String>,
    fail_run: bool,
}

struct Fake(Arc<Mutex<Record>>);

impl Backend for Fake {
    fn run(
        &mut self,
        c: &ContainerConfig,
        stdout: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<i32, backend::Error> {
        if self.0.lock().expect("lock").fail_run {
            return Err(backend::Error::BadId(c.id.clone()));
        }
        let child = Command::new(&c.args[0])
            .args(&c.args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|source| backend::Error::Write {
                id: c.id.clone(),
                path: c.args[0].clone().into(),
                source,
            })?;
        // The serve loop reaps it through its pidfd; dropping a Child neither waits nor kills.
        Ok(child.id() as i32)
    }

    fn remove(&mut self, id: &str) -> Result<(), backend::Error> {
        self.0.lock().expect("lock").removed.push(id.to_string());
        Ok(())
    }

    fn oom_killed(&self, id: &str) -> bool {
        self.0.lock().expect("lock").oom.contains(id)
    }
}

/// A runtime whose helper is the serve loop on a thread; returns the record and the thread.
async fn fake_runtime() -> (
    Runtime,
    Arc<Mutex<Record>>,
    std::thread::JoinHandle<Result<(), protocol::Error>>,
) {
    let (ours, theirs) = protocol::pair().expect("pair");
    let record = Arc::new(Mutex::new(Record::default()));
    let mut fake = Fake(Arc::clone(&record));
    let thread = std::thread::spawn(move || {
        protocol::send(
            theirs.as_fd(),
            &ToInit::Ready {
                notes: vec!["cleaned x".into()],
            },
            &[],
        )?;
        helper::serve(theirs.as_fd(), &mut fake)
    });
    let rt = Runtime::connect(ours, None).await.expect("connect");
    (rt, record, thread)
}

fn request(id: &str, args: &[&str]) -> (ContainerRequest, std::fs::File) {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let err = w.try_clone().expect("dup");
    let config = ContainerConfig {
        id: id.into(),
        lower_dirs: vec![],
        writable_dir: "/nonexistent".into(),
        readonly_root: true,
        args: args.iter().map(|a| a.to_string()).collect(),
        env: vec!["PATH=/usr/bin:/bin".into()],
        cwd: "/".into(),
        user: (0, 0),
        hostname: id.into(),
        cpu: None,
        memory_bytes: None,
        pids: None,
        netns: None,
        volumes: vec![],
        files: vec![],
        capabilities: vec![],
        disk_project: None,
        ids: None,
    };
    (
        ContainerRequest {
            config,
            stdout: w,
            stderr: err,
        },
        std::fs::File::from(r),
    )
}

async fn next(events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("an event before the deadline")
        .expect("the stream is open")
}

#[tokio::test]
async fn runs_passes_output_pipes_and_reports_the_exit() {
    let (rt, record, _thread) = fake_runtime().await;
    assert_eq!(rt.startup_notes(), ["cleaned x".to_string()]);
    let mut events = rt.events().expect("events");
    assert!(rt.events().is_none(), "only one taker");
    let (req, mut out) = request("web-1", &["sh", "-c", "echo hello; echo oops >&2; exit 3"]);
    let started = rt.run(req).await.expect("run");
    assert_eq!(started.id, "web-1");
    assert!(started.pid > 0);
    assert_eq!(
        next(&mut events).await,
        Event::Exit(Exit {
            id: "web-1".into(),
            status: ExitStatus::Code(3),
            oom_killed: false
        })
    );
    let mut text = String::new();
    out.read_to_string(&mut text).expect("read");
    assert_eq!(text, "hello\noops\n");
    rt.remove("web-1").await.expect("remove");
    assert_eq!(record.lock().expect("lock").removed, ["web-1"]);
    // Removed: the id is unknown now and may run again.
    let err = rt.remove("web-1").await.expect_err("gone");
    assert!(err.to_string().contains("no container web-1"), "{err}");
}

#[tokio::test]
async fn signals_running_containers_and_refuses_to_remove_them() {
    let (rt, record, _thread) = fake_runtime().await;
    let mut events = rt.events().expect("events");
    record.lock().expect("lock").oom.insert("hog".into());
    let (req, _out) = request("hog", &["sleep", "30"]);
    rt.run(req).await.expect("run");
    let err = rt.remove("hog").await.expect_err("running");
    assert!(
        matches!(&err, Error::Failed { op: "remove", id, .. } if id == "hog"),
        "{err}"
    );
    let (dup, _o) = request("hog", &["true"]);
    let err = rt.run(dup).await.expect_err("duplicate");
    assert!(err.to_string().contains("exists already"), "{err}");
    rt.signal("hog", libc::SIGKILL).await.expect("signal");
    assert_eq!(
        next(&mut events).await,
        Event::Exit(Exit {
            id: "hog".into(),
            status: ExitStatus::Signal(libc::SIGKILL),
            oom_killed: true
        })
    );
    let err = rt.signal("hog", libc::SIGTERM).await.expect_err("ended");
    assert!(err.to_string().contains("not running"), "{err}");
    let err = rt
        .signal("nobody", libc::SIGTERM)
        .await
        .expect_err("unknown");
    assert!(err.to_string().contains("no container nobody"), "{err}");
}

#[tokio::test]
async fn backend_failures_come_back_as_errors_naming_the_container() {
    let (rt, record, _thread) = fake_runtime().await;
    record.lock().expect("lock").fail_run = true;
    let (req, _out) = request("bad", &["true"]);
    let err = rt.run(req).await.expect_err("fails");
    assert!(
        matches!(&err, Error::Failed { op: "run", id, .. } if id == "bad"),
        "{err}"
    );
    assert!(err.to_string().contains("bad"), "{err}");
}

#[tokio::test]
async fn dropping_the_runtime_stops_the_helper_and_its_containers() {
    let (rt, record, thread) = fake_runtime().await;
    let (req, mut out) = request("long", &["sleep", "30"]);
    rt.run(req).await.expect("run");
    drop(rt);
    let result = tokio::task::spawn_blocking(move || thread.join().expect("join"))
        .await
        .expect("join task");
    result.expect("serve ends cleanly");
    assert_eq!(record.lock().expect("lock").removed, ["long"]);
    // The container process is gone: its pipe's write end is closed.
    let mut text = String::new();
    out.read_to_string(&mut text).expect("read to end");
}

#[tokio::test]
async fn a_dead_helper_ends_the_stream_and_fails_calls() {
    let (ours, theirs) = protocol::pair().expect("pair");
    protocol::send(theirs.as_fd(), &ToInit::Ready { notes: vec![] }, &[]).expect("ready");
    let rt = Runtime::connect(ours, None).await.expect("connect");
    let mut events = rt.events().expect("events");
    drop(theirs);
    assert!(matches!(next(&mut events).await, Event::Lost(_)));
    let (req, _out) = request("late", &["true"]);
    let err = rt.run(req).await.expect_err("gone");
    assert!(matches!(err, Error::HelperGone(_)), "{err}");
}

#[tokio::test]
async fn a_helper_that_dies_while_starting_is_an_error() {
    let (ours, theirs) = protocol::pair().expect("pair");
    drop(theirs);
    let err = Runtime::connect(ours, None).await.err().expect("error");
    assert!(matches!(err, Error::HelperGone(_)), "{err}");
}
