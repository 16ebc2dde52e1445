//! `baton events [-f] [--tail N] [--json]`: a board's recent events, one line each, and with
//! `-f` the new ones as they come (its server-sent event stream). Texts in events come from
//! containers and specs: control characters are shown escaped, never sent to the terminal.

use baton_api::events::{Event, EventList, What};

use crate::client::Client;

/// Prints the board's last `tail` events, then, with `follow`, each new one.
pub fn events(client: &Client, follow: bool, tail: usize, json: bool) -> anyhow::Result<()> {
    let show = |event: &Event| {
        if json {
            println!("{}", serde_json::to_string(event).unwrap_or_default());
        } else {
            println!("{}", line(event));
        }
    };
    if follow {
        client.follow(
            &format!("/v1/events?follow=1&tail={tail}"),
            |text| match data(text).map(serde_json::from_str::<Event>) {
                Some(Ok(event)) => show(&event),
                Some(Err(e)) => eprintln!("baton: an event this build cannot read: {e}"),
                None => {}
            },
        )?;
        return Ok(());
    }
    let list: EventList = client.get(&format!("/v1/events?tail={tail}"))?;
    for event in &list.events {
        show(event);
    }
    Ok(())
}

/// The JSON of a server-sent event's `data:` line; `None` for its other lines.
fn data(line: &str) -> Option<&str> {
    line.strip_prefix("data:").map(str::trim_start)
}

/// One event in a line: time (UTC), board, kind, then what it says.
pub fn line(event: &Event) -> String {
    let at = chrono::DateTime::from_timestamp_millis(i64::try_from(event.at_ms).unwrap_or(0))
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".to_string());
    let board = if event.board.is_empty() {
        "-"
    } else {
        &event.board
    };
    format!(
        "{at} {} {} {}",
        printable(board),
        event.what.kind(),
        printable(&says(&event.what))
    )
}

/// What an event says, after its kind.
fn says(what: &What) -> String {
    match what {
        What::InstanceStarted {
            instance,
            restarts,
            start_ms,
            ..
        } => {
            let took = start_ms
                .map(|ms| format!(" in {ms} ms"))
                .unwrap_or_default();
            format!("{instance}{took} (restarts {restarts})")
        }
        What::InstanceReady { instance, .. }
        | What::InstanceFrozen { instance, .. }
        | What::InstanceThawed { instance, .. } => instance.clone(),
        What::InstanceStopped { instance, exit, .. } => match exit {
            Some(e) => format!("{instance}: {}", crate::board_cli::exit_text(e)),
            None => instance.clone(),
        },
        What::InstanceCrashed {
            instance,
            exit,
            error,
            next,
            ..
        } => {
            let why = match (exit, error) {
                (_, Some(e)) => format!("start failed: {e}"),
                (Some(e), None) => crate::board_cli::exit_text(e),
                (None, None) => String::new(),
            };
            format!("{instance}: {why}, next {}", next.as_str())
        }
        What::SpecApplied { service } | What::SpecDeleted { service } => service.clone(),
        What::ScaleDecided {
            service,
            count,
            frozen,
            reason,
        } => {
            let frozen = if *frozen > 0 {
                format!(" ({frozen} frozen)")
            } else {
                String::new()
            };
            format!("{service}: {count}{frozen}: {reason}")
        }
        What::InstanceMoved {
            instance, from, to, ..
        } => format!("{instance}: {from} -> {to}"),
        What::BoardJoined { member } => member.clone(),
        What::BoardLeft { member, why } => format!("{member} ({why})"),
        What::PeerUnreachable { peer, error } => format!("{peer}: {error}"),
        What::Lagged { missed } => format!("{missed} events missed (reader too slow)"),
        What::Unknown => "(a kind this build does not know)".to_string(),
    }
}

/// `text` with what a terminal would act on or hide escaped: control and format characters
/// (a right-to-left override, say), anything not printable; a tab is kept.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\\' | '"' | '\'' | '\t' => c.to_string(),
            _ => c.escape_debug().to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::{ExitStatus, InstancePhase};

    fn event(what: What) -> Event {
        Event {
            seq: 3,
            at_ms: 1_764_921_147_000,
            board: "pi-a".into(),
            what,
        }
    }

    #[test]
    fn an_oom_crash_reads_in_one_line() {
        let crash = event(What::InstanceCrashed {
            service: "web".into(),
            instance: "web-1".into(),
            exit: Some(ExitStatus {
                code: None,
                signal: Some(9),
                oom_killed: true,
            }),
            error: None,
            restarts: 1,
            next: InstancePhase::Backoff,
        });
        assert_eq!(
            line(&crash),
            "2025-12-05 07:52:27Z pi-a instance-crashed web-1: signal 9 (OOM), next backoff"
        );
    }

    #[test]
    fn hostile_text_is_escaped_not_sent_to_the_terminal() {
        let decided = event(What::ScaleDecided {
            service: "web".into(),
            count: 2,
            frozen: 0,
            reason: "load\u{1b}[2J\nrm".into(),
        });
        let shown = line(&decided);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(shown.ends_with("web: 2: load\\u{1b}[2J\\nrm"), "{shown}");
        // A right-to-left override would show the rest backwards.
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(printable("web-1 \"é\""), "web-1 \"é\"");
        assert_eq!(printable("a\tb\u{1b}[2J"), "a\tb\\u{1b}[2J");
    }

    #[test]
    fn only_data_lines_of_the_stream_carry_events() {
        assert_eq!(data("data: {\"seq\":1}"), Some("{\"seq\":1}"));
        assert_eq!(data("id: pi-a:1.1"), None);
        assert_eq!(data(": keep-alive"), None);
        assert_eq!(data("event: lagged"), None);
    }
}
