//! Records from a key holder or a tampered `/data` that try to leave `services/`: they are
//! refused where they enter, reported, and the card outside `services/` is never written.

use std::path::Path;

use baton_cluster::desired::{Clock, Desired, Reason, Record, Version};
use baton_cluster::sync::SyncKey;

use super::local::{self, Book, Files};
use super::{refused, NodeState};
use crate::board::card::CardStore;
use crate::board::console::Console;

const KEY: &str = "hostile-records-test-key-0123456789abcdef";

fn record(name: &str, text: Option<&str>) -> Record {
    Record {
        name: name.into(),
        text: text.map(str::to_string),
        version: Version {
            time: 1_000,
            board: "pi-evil".into(),
        },
    }
}

/// The hostile records: one that would overwrite `cluster.toml`, one that would delete it, and
/// a few more ways out of `services/`.
fn hostile() -> Vec<Record> {
    vec![
        record("../cluster", Some("[cluster]\nname = \"taken\"\n")),
        record("../cluster", None),
        record("..", Some("x")),
        record("/etc/passwd", Some("x")),
        record("a/../../cluster", None),
        record("web", Some("name = \"web\"\nimage = \"x:1\"\n")),
    ]
}

/// A card: `cluster.toml` next to `services/`.
fn card() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().expect("temp dir");
    let services = root.path().join("services");
    std::fs::create_dir(&services).expect("services");
    std::fs::write(root.path().join("cluster.toml"), "the operator's").expect("cluster.toml");
    (root, services)
}

/// What a round does with merged records: mirror every one the card does not hold yet.
fn merge_and_mirror(
    records: Vec<Record>,
    services: &Path,
    source: &str,
    console: &Console,
) -> (Desired, Vec<String>) {
    let mut inner = NodeState::default();
    let changes = inner.desired.merge(records, &mut inner.clock, 1_000_000);
    refused::report(console, &mut inner, source, &changes);
    assert_eq!(inner.records_refused, 5);
    let names: Vec<String> = inner.desired.records().map(|r| r.name.clone()).collect();
    let mut book = Book::default();
    // The data partition's copy takes no other name than the card does.
    let data = tempfile::tempdir().expect("temp dir");
    let card = CardStore::open(services.to_path_buf(), Some(data.path().to_path_buf())).0;
    let problems = local::mirror(
        &card,
        &mut book,
        &inner.desired,
        &names,
        &local::read_files(services),
    );
    let kept: Vec<String> = std::fs::read_dir(data.path().join("specs"))
        .expect("specs")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(kept, ["web.toml"]);
    (inner.desired, problems)
}

fn assert_card_untouched_but_web(root: &Path) {
    assert_eq!(
        std::fs::read_to_string(root.join("cluster.toml")).expect("cluster.toml is still there"),
        "the operator's"
    );
    let mut files: Vec<String> = std::fs::read_dir(root.join("services"))
        .expect("services")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["web.toml"]);
    let mut top: Vec<String> = std::fs::read_dir(root)
        .expect("root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["cluster.toml", "services"]);
}

fn assert_reported(console: &Console, source: &str) {
    let lines = console.recent().join("\n");
    assert!(
        lines.contains(&format!(
            "cluster: {source}: record \"../cluster\" (stamped by board \"pi-evil\") refused: its name is not a service name"
        )),
        "{lines}"
    );
    assert!(lines.contains("(5 refused so far)"), "{lines}");
}

#[test]
fn a_sync_request_naming_dot_dot_cluster_writes_nothing_outside_services() {
    let (root, services) = card();
    let key = SyncKey::derive(KEY).expect("key");
    let (_, body) = key.request("pi-evil", "d", hostile()).expect("request");
    let request = key
        .open_request(&body)
        .expect("a key holder's request opens");
    let console = Console::quiet(100);
    let (desired, problems) =
        merge_and_mirror(request.records, &services, "the sync request", &console);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(desired.records().count(), 1);
    assert_card_untouched_but_web(root.path());
    assert_reported(&console, "the sync request");
}

#[test]
fn a_sync_answer_naming_dot_dot_cluster_writes_nothing_outside_services() {
    let (root, services) = card();
    let key = SyncKey::derive(KEY).expect("key");
    let (challenge, body) = key.request("pi-a", "d", Vec::new()).expect("request");
    let request = key.open_request(&body).expect("opens");
    let answer = key.respond(&request, "pi-evil", hostile()).expect("answer");
    let response = key
        .open_response(&answer, &challenge)
        .expect("answer opens");
    let console = Console::quiet(100);
    let (_, problems) = merge_and_mirror(response.records, &services, "the answer", &console);
    assert!(problems.is_empty(), "{problems:?}");
    assert_card_untouched_but_web(root.path());
    assert_reported(&console, "the answer");
}

#[test]
fn a_saved_state_naming_dot_dot_cluster_writes_nothing_outside_services() {
    let (root, services) = card();
    let data = tempfile::tempdir().expect("data");
    let files = Files::under(data.path());
    std::fs::write(
        &files.desired,
        serde_json::to_vec(&hostile()).expect("json"),
    )
    .expect("write desired.json");
    let records = files.load_records();
    assert_eq!(records.len(), 6, "the file is read whole");
    let console = Console::quiet(100);
    let (_, problems) = merge_and_mirror(records, &services, "the saved state", &console);
    assert!(problems.is_empty(), "{problems:?}");
    assert_card_untouched_but_web(root.path());
    assert_reported(&console, "the saved state");
}

#[test]
fn the_mirror_itself_refuses_a_name_that_is_not_a_plain_file_name() {
    let (root, services) = card();
    let mut desired = Desired::default();
    desired.merge([record("web", Some("w"))], &mut Clock::default(), 1_000_000);
    let mut book = Book::default();
    let names: Vec<String> = ["../cluster", "..", ".", "", "a/b", "web"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let data = tempfile::tempdir().expect("temp dir");
    let card = CardStore::open(services.clone(), Some(data.path().to_path_buf())).0;
    let problems = local::mirror(
        &card,
        &mut book,
        &desired,
        &names,
        &local::read_files(&services),
    );
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(
        problems[0]
            .ends_with("the service name \"../cluster\" is not a plain file name; nothing written"),
        "{problems:?}"
    );
    assert_card_untouched_but_web(root.path());
    assert_eq!(book.entries.keys().collect::<Vec<_>>(), ["web"]);
    for good in ["web", "db-2", "x.y"] {
        assert!(local::plain_file_name(good));
    }
}

#[test]
fn a_refusal_is_printed_once_and_counted_each_time() {
    let console = Console::quiet(100);
    let mut inner = NodeState::default();
    for _ in 0..3 {
        let changes =
            inner
                .desired
                .merge([record("../cluster", None)], &mut inner.clock, 1_000_000);
        assert_eq!(changes.refused[0].reason, Reason::Name);
        refused::report(
            &console,
            &mut inner,
            "the sync answer of board \"pi-evil\"",
            &changes,
        );
    }
    assert_eq!(inner.records_refused, 3);
    let lines = console.recent();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("(1 refused so far)"), "{lines:?}");
}
