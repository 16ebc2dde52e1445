//! `baton boards forget NAME`: a board that is gone for good leaves the cluster's registry of
//! known boards, so the tombstones of deleted specs no longer wait for it.
//!
//! Each board keeps its own registry, so the command asks the board named by `--board`
//! (`DELETE /v1/cluster/boards/NAME`), then every other board alive in that board's view of the
//! cluster, with the same token and CA. A board that cannot be reached is named, and the command
//! fails: run it again when that board is up (forgetting twice does no harm).

use anyhow::{bail, Context};
use baton_api::{BoardForgotten, ClusterView, MemberStatus};

use crate::client::Client;

/// Whether `name` can be a board's host name, and so a path segment as it is.
fn plain_board_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// Forgets `name` on the board of `first`, then on every other board alive in its view of the
/// cluster (reached with `client_for` their API URL); prints what each did.
pub fn forget_everywhere(
    first: &Client,
    name: &str,
    client_for: impl Fn(&str) -> anyhow::Result<Client>,
) -> anyhow::Result<()> {
    if !plain_board_name(name) {
        bail!("{name:?} is not a board name (1-63 of letters, digits, '-', '.', '_')");
    }
    let view: ClusterView = first
        .get("/v1/cluster")
        .context("reading the cluster's members")?;
    print!("{}: {}", view.board, describe(&forget(first, name)?));
    let mut failed = Vec::new();
    for member in &view.members {
        let (MemberStatus::Alive, Some(api)) = (member.state, &member.api) else {
            continue;
        };
        if member.name == name || member.name == view.board {
            continue;
        }
        match client_for(api).and_then(|c| forget(&c, name)) {
            Ok(report) => print!("{}: {}", member.name, describe(&report)),
            Err(e) => {
                eprintln!("baton: {}: {e:#}", member.name);
                failed.push(member.name.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "board {name} is not forgotten on {}; run the command again once they answer",
            failed.join(", ")
        );
    }
    Ok(())
}

/// Asks one board for `DELETE /v1/cluster/boards/{name}`.
fn forget(client: &Client, name: &str) -> anyhow::Result<BoardForgotten> {
    if !plain_board_name(name) {
        bail!("{name:?} is not a board name (1-63 of letters, digits, '-', '.', '_')");
    }
    let path = format!("/v1/cluster/boards/{name}");
    let (code, text) = client.send("DELETE", &path, None)?;
    client
        .read(&path, code, &text)
        .with_context(|| format!("forgetting board {name}"))
}

/// What [`forget`] prints.
fn describe(report: &BoardForgotten) -> String {
    let mut out = if report.forgotten || report.key.is_some() {
        format!("forgot board {}\n", report.board)
    } else {
        format!(
            "board {} was not known to this board; nothing to forget\n",
            report.board
        )
    };
    if let Some(key) = &report.key {
        out.push_str(&format!(
            "its key {key} is unbound: the next key to sign as {} is bound\n",
            report.board
        ));
    }
    if !report.released.is_empty() {
        out.push_str(&format!(
            "tombstones released (dropped at the next round): {}\n",
            report.released.join(", ")
        ));
    }
    for (tombstone, boards) in &report.waiting {
        out.push_str(&format!(
            "tombstone {tombstone} still waits for: {}\n",
            boards.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_what_was_forgotten_released_and_still_waits() {
        let report = BoardForgotten {
            board: "pi-gone".into(),
            forgotten: true,
            released: vec!["old".into(), "older".into()],
            waiting: [("db".to_string(), vec!["pi-c".to_string()])].into(),
            key: Some("0a1b2c3d4e5f6071".into()),
        };
        assert_eq!(
            describe(&report),
            "forgot board pi-gone\nits key 0a1b2c3d4e5f6071 is unbound: the next key to sign as pi-gone is bound\ntombstones released (dropped at the next round): old, older\ntombstone db still waits for: pi-c\n"
        );
        let nothing = BoardForgotten {
            board: "pi-x".into(),
            ..BoardForgotten::default()
        };
        assert_eq!(
            describe(&nothing),
            "board pi-x was not known to this board; nothing to forget\n"
        );
    }

    #[test]
    fn names_that_are_not_board_names_are_refused_before_asking() {
        let client = Client::new("http://127.0.0.1:9", "t");
        for bad in ["", "../v1/reboot", "a/b", "a b", "x?y", &"a".repeat(64)] {
            let err = forget(&client, bad).expect_err("refused");
            assert!(err.to_string().contains("is not a board name"), "{err}");
        }
        for good in ["pi-a", "node.lan", "b_1"] {
            assert!(plain_board_name(good));
        }
    }
}
