//! A holder of the cluster key on the segment replays a sync request: the LAN station seals real
//! requests to board 1's `POST /v1/cluster/sync` with the cluster key, under a board name that is
//! no board's, as a laptop that read a card (or recorded the segment) would. A request stamped
//! far in the past is refused; a fresh one carrying a new service is answered and the service
//! spreads, while a record of it named `../cluster` is refused and reported; once the service is deleted, the same request bytes sent again are refused (HTTP 409
//! with a sealed refusal), counted in `sync_refused` and reported on the console, and the service
//! stays deleted on every board.
//!
//! While a tombstone is held, a replayed record is older than it and changes nothing anyway; the
//! replay threat is a replay after the tombstone is dropped (a week on). What this step shows
//! within one boot is that the board refuses the replay before merging its records at all.

use std::time::{Duration, Instant};

use baton::client::Client;
use baton_cluster::desired::{Record, Version};
use baton_cluster::sync::fresh::{Stale, WINDOW_MS};
use baton_cluster::sync::{SyncKey, MAX_BODY};
use baton_qemu::Lab;
use baton_tests::{ca_bundle, wait_until};

use super::{board_name, get, KEY};

/// The board name the key holder signs its requests with: no board's.
const ASKER: &str = "baton-ffffff";

/// The service the key holder's request brings in.
const SERVICE: &str = "replayed";

/// A time long before any board's clock: 2001-09-09 (unix ms).
const LONG_AGO_MS: u64 = 1_000_000_000_000;

/// The service's spec: placed only on the key holder's board, which is no member, so it runs
/// nowhere and costs the boards nothing while it exists.
fn spec() -> String {
    format!(
        "name = \"{SERVICE}\"\nimage = \"oci-archive:images/hello.tar\"\nport = 8080\nresources = {{ memory = \"32Mi\" }}\nplacement = {{ boards = [\"{ASKER}\"] }}\n"
    )
}

/// POSTs `body` to `url` from the station, over HTTPS trusting the tests' CA; returns the
/// status and the body of the answer.
fn post(lab: &Lab, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let station = lab.station().expect("the lab has a LAN station");
    let tls = baton_cluster::tls::verify::client_config(&ca_bundle()).expect("the tests' CA");
    station
        .run(move || {
            let config = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(20)))
                .http_status_as_error(false)
                .build();
            let agent = baton_cluster::tls::connector::agent(config, tls);
            let mut response = agent
                .post(url)
                .header("Content-Type", "application/octet-stream")
                .send(body)
                .unwrap_or_else(|e| panic!("POST {url} from the station: {e}"));
            let status = response.status().as_u16();
            let bytes = response
                .body_mut()
                .with_config()
                .limit(MAX_BODY as u64)
                .read_to_vec()
                .unwrap_or_else(|e| panic!("reading the answer of {url}: {e}"));
            (status, bytes)
        })
        .expect("the station")
}

/// Whether the board lists `SERVICE` in `/v1/services`.
fn lists_service(client: &Client) -> Option<bool> {
    let services = get(client, "/v1/services")?;
    Some(
        services["services"]
            .as_array()?
            .iter()
            .any(|s| s["name"] == SERVICE),
    )
}

fn specs_digest(client: &Client) -> Option<String> {
    Some(
        get(client, "/v1/cluster")?["specs_digest"]
            .as_str()?
            .to_owned(),
    )
}

fn sync_refused(client: &Client) -> u64 {
    get(client, "/v1/cluster").expect("board 1's view")["sync_refused"]
        .as_u64()
        .expect("board 1 counts refused sync requests")
}

/// Runs the key holder's requests and the replay against board 1 of a formed cluster of three.
pub(super) fn replays_change_nothing(lab: &Lab, clients: &[Client], limit: Duration) {
    let key = SyncKey::derive(KEY).expect("the sync key");
    let c1 = &clients[0];
    let three = &clients[..3];
    let view = get(c1, "/v1/cluster").expect("board 1's view");
    let me = &view["members"][0];
    assert_eq!(me["name"], board_name(1).as_str(), "{view}");
    let url = format!(
        "{}/v1/cluster/sync",
        me["api"].as_str().expect("board 1's API")
    );
    let console = lab.board(1).expect("board 1").console();
    let from = console.len();
    let before = sync_refused(c1);

    // 1. A request made now but stamped long ago: refused, counted and reported. Its sealed
    // refusal names board 1's clock, by which the next request is stamped (as a board whose
    // clock is off does), so this does not depend on the boards' clocks agreeing with the host's.
    let (challenge, old) = key
        .request_at(LONG_AGO_MS, ASKER, "", Vec::new())
        .expect("a request");
    let (status, body) = post(lab, &url, &old);
    let refused_at = Instant::now();
    assert_eq!(
        status,
        409,
        "an old request: {}",
        String::from_utf8_lossy(&body)
    );
    let refusal = key
        .open_refusal(&body, &challenge)
        .expect("a sealed refusal of the old request");
    assert_eq!(refusal.board, board_name(1), "{refusal:?}");
    assert!(refusal.reason.contains("behind"), "{refusal:?}");
    // Board 1 counts before it answers; `>`, not `+ 1`: an honest board could be refused too.
    assert!(sync_refused(c1) > before, "the old request is not counted");
    let behind = format!("the sync request of board \"{ASKER}\" refused: its time is");
    console
        .wait_for_line_from(from, &behind, Instant::now() + limit)
        .unwrap_or_else(|e| panic!("board 1 did not report the old request: {e}"));

    // 2. A fresh request that brings a service in: answered, and the service reaches every board.
    let board_now = refusal.time_ms + refused_at.elapsed().as_millis() as u64;
    let record = Record {
        name: SERVICE.to_owned(),
        text: Some(spec()),
        version: Version {
            time: board_now,
            board: ASKER.to_owned(),
        },
    };
    // With it, a record whose name would make the card's mirror write `services/../cluster.toml`,
    // that is the card's `cluster.toml`: refused by name where it enters, and reported.
    let escape = Record {
        name: "../cluster".to_owned(),
        text: Some("[cluster]\nname = \"taken\"\n".to_owned()),
        version: Version {
            time: board_now,
            board: ASKER.to_owned(),
        },
    };
    let (challenge, recorded) = key
        .request_at(board_now, ASKER, "", vec![record, escape])
        .expect("a request");
    let (status, body) = post(lab, &url, &recorded);
    assert_eq!(
        status,
        200,
        "a fresh request: {}",
        String::from_utf8_lossy(&body)
    );
    let answer = key
        .open_response(&body, &challenge)
        .expect("a sealed answer to the fresh request");
    assert!(
        answer
            .records
            .iter()
            .any(|r| r.name == SERVICE && r.text.is_some()),
        "board 1 did not take the record: {:?}",
        answer.records
    );
    assert!(
        answer.records.iter().all(|r| r.name != "../cluster"),
        "board 1 took the record named ../cluster: {:?}",
        answer.records
    );
    console
        .wait_for_line_from(
            from,
            "record \"../cluster\" (stamped by board \"baton-ffffff\") refused: its name is not a service name",
            Instant::now() + limit,
        )
        .unwrap_or_else(|e| panic!("board 1 did not report the record named ../cluster: {e}"));
    for (i, client) in three.iter().enumerate() {
        wait_until(
            &format!("{SERVICE} to be listed on board {}", i + 1),
            limit,
            || lists_service(client).filter(|listed| *listed),
        );
    }

    // 3. Deleted through board 1's API: gone everywhere, and the three boards agree again.
    let (code, body) = c1
        .send("DELETE", &format!("/v1/services/{SERVICE}"), None)
        .expect("DELETE");
    assert_eq!(code, 202, "{body}");
    let digest = wait_until("the deletion to reach the three boards", limit, || {
        let gone = three.iter().all(|c| lists_service(c) == Some(false));
        let digests: Vec<Option<String>> = three.iter().map(specs_digest).collect();
        let first = digests[0].clone()?;
        (gone && digests.iter().all(|d| d.as_deref() == Some(first.as_str()))).then_some(first)
    });

    // 4. The same bytes again: refused with a sealed refusal, counted and reported.
    let before = sync_refused(c1);
    let from = console.len();
    let (status, body) = post(lab, &url, &recorded);
    let replayed_at = Instant::now();
    assert_eq!(
        status,
        409,
        "the replayed request was answered: {}",
        String::from_utf8_lossy(&body)
    );
    let refusal = key
        .open_refusal(&body, &challenge)
        .expect("a sealed refusal of the replay");
    // Past the freshness window the request would be refused as old instead: say so rather
    // than fail on the reason.
    let age = refused_at.elapsed();
    assert!(
        age < Duration::from_millis(WINDOW_MS),
        "the steps took {age:?}, longer than the window of {WINDOW_MS} ms a replay is told apart in"
    );
    assert_eq!(refusal.reason, Stale::Replayed.to_string(), "{refusal:?}");
    // Board 1 counts (and would have merged) before it answers, so both show by now.
    assert!(sync_refused(c1) > before, "the replay is not counted");
    assert_eq!(
        specs_digest(c1).as_deref(),
        Some(digest.as_str()),
        "the replay changed board 1's specs"
    );
    let replayed = format!(
        "the sync request of board \"{ASKER}\" refused: {}",
        Stale::Replayed
    );
    console
        .wait_for_line_from(from, &replayed, Instant::now() + limit)
        .unwrap_or_else(|e| panic!("board 1 did not report the replay: {e}"));

    // The service stays deleted on every board. Board 1's specs did not change, so there is
    // nothing to spread; boards 2 and 3 are checked once they have heard board 1 (whose gossip
    // carries its specs' digest) since the replay.
    for (i, client) in three.iter().enumerate().skip(1) {
        wait_until(
            &format!("board {} to hear board 1 after the replay", i + 1),
            limit,
            || {
                // Taken before the view: a board 1 heard within it was heard after the replay.
                let since = replayed_at.elapsed();
                let view = get(client, "/v1/cluster")?;
                let one = view["members"]
                    .as_array()?
                    .iter()
                    .find(|m| m["name"] == board_name(1).as_str())?;
                let heard = Duration::from_millis(one["last_heard_ms"].as_u64()?);
                (heard < since).then_some(())
            },
        );
    }
    for (i, client) in three.iter().enumerate() {
        assert_eq!(
            lists_service(client),
            Some(false),
            "{SERVICE} came back on board {}",
            i + 1
        );
        assert_eq!(
            specs_digest(client).as_deref(),
            Some(digest.as_str()),
            "board {}'s specs changed after the replay",
            i + 1
        );
    }
}
