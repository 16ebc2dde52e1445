use super::*;
use std::os::unix::net::UnixStream;

fn console(dir: &Path) -> Arc<Console> {
    Arc::new(Console::new(3, &dir.join("board3.log"), false).unwrap())
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn splits_lines_keeps_them_and_logs_them() {
    let dir = tempfile::tempdir().unwrap();
    let c = console(dir.path());
    let reader = c
        .attach(&b"Booting Linux\r\nbaton: ready\npartial"[..])
        .unwrap();
    reader.join().unwrap();
    assert_eq!(c.lines(), ["Booting Linux", "baton: ready", "partial"]);
    assert!(!c.is_open());
    assert!(c.time_to_first_line().is_some());
    let log = std::fs::read_to_string(c.log_path()).unwrap();
    assert_eq!(log, "Booting Linux\nbaton: ready\npartial\n");
}

#[test]
fn waits_for_lines_that_arrive_later() {
    let dir = tempfile::tempdir().unwrap();
    let c = console(dir.path());
    let (mut tx, rx) = UnixStream::pair().unwrap();
    let reader = c.attach(rx).unwrap();
    let writer = std::thread::spawn(move || {
        tx.write_all(b"one\n").unwrap();
        tx.write_all(b"baton: ready\n").unwrap();
        tx.write_all(b"baton: eth0 169.254.3.4/16\n").unwrap();
        tx
    });
    assert_eq!(c.wait_for_line("ready", soon()).unwrap(), "baton: ready");
    let ip = matching("a link-local address", |l: &str| l.contains("169.254."));
    let line = c.wait_for_line_from(0, ip, soon()).unwrap();
    assert_eq!(
        line,
        Line {
            index: 2,
            text: "baton: eth0 169.254.3.4/16".into()
        }
    );
    drop(writer.join().unwrap());
    reader.join().unwrap();
}

#[test]
fn counts_across_restarts_and_marks_runs() {
    let dir = tempfile::tempdir().unwrap();
    let c = console(dir.path());
    c.attach(&b"baton: ready\nbye\n"[..])
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(c.run_start(), 0);
    let (mut tx, rx) = UnixStream::pair().unwrap();
    let reader = c.attach(rx).unwrap();
    assert_eq!(c.run_start(), 2);
    assert!(c.is_open());
    tx.write_all(b"baton: ready\n").unwrap();
    let second = c.wait_for_count("baton: ready", 2, soon()).unwrap();
    assert_eq!(second.index, 2);
    assert_eq!(c.count("baton: ready"), 2);
    assert_eq!(
        c.wait_for_line_from(c.run_start(), "ready", soon())
            .unwrap()
            .index,
        2
    );
    drop(tx);
    reader.join().unwrap();
}

#[test]
fn times_out_with_the_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    let c = console(dir.path());
    let (mut tx, rx) = UnixStream::pair().unwrap();
    let reader = c.attach(rx).unwrap();
    tx.write_all(b"kernel panic\n").unwrap();
    c.wait_for_line("panic", soon()).unwrap();
    let err = c
        .wait_for_line("never", Instant::now() + Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(err, ConsoleError::Timeout { board: 3, .. }));
    let text = err.to_string();
    assert!(
        text.contains("\"never\"") && text.contains("kernel panic"),
        "{text}"
    );
    drop(tx);
    reader.join().unwrap();
}

#[test]
fn reports_a_closed_console_instead_of_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let c = console(dir.path());
    c.attach(&b"early exit\n"[..]).unwrap().join().unwrap();
    let far = Instant::now() + Duration::from_secs(3600);
    let err = c.wait_for_line("baton: ready", far).unwrap_err();
    assert!(
        matches!(err, ConsoleError::Closed { board: 3, .. }),
        "{err}"
    );
}
