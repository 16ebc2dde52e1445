//! The scaling part of `baton ps`: per service the count decided, what runs, the load behind
//! the decision, the bound in force and the last decision.

use baton_api::ServiceList;

/// The scaling table for a `GET /v1/services` answer; empty when no board reported scaling
/// (a board of an older version).
pub fn table(list: &ServiceList) -> String {
    let rows: Vec<_> = list
        .services
        .iter()
        .filter_map(|s| s.scaling.as_ref().map(|scaling| (&s.name, scaling)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n{:<20} {:>7} {:>7} {:>5} {:>6} {:>8}  {:<24} {}\n",
        "SERVICE", "DESIRED", "RUNNING", "READY", "FROZEN", "INFLIGHT", "MAX", "LAST DECISION"
    );
    let mut notes = Vec::new();
    for (name, s) in &rows {
        let max = format!("{} ({})", s.max, s.max_why);
        let running = list
            .services
            .iter()
            .find(|x| &x.name == *name)
            .map_or(0, |x| x.running);
        let last = s.decisions.last().map_or("-", |d| d.reason.as_str());
        out.push_str(&format!(
            "{:<20} {:>7} {:>7} {:>5} {:>6} {:>8}  {:<24} {last}\n",
            name, s.desired, running, s.ready, s.frozen, s.in_flight, max
        ));
        let held: u32 = s.held.iter().map(|h| h.count).sum();
        if held > 0 {
            let wait = s
                .oldest_held_ms
                .map_or(String::new(), |ms| format!(", the oldest here for {ms} ms"));
            notes.push(format!("{name}: {held} requests held{wait}"));
        }
    }
    if rows.iter().any(|(_, s)| !s.clock_synced) {
        notes.push(
            "the board's clock has not been synced since boot: surge dates follow it as it is"
                .to_string(),
        );
    }
    for note in notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::scaling::{Decision, Held, Scaling};
    use baton_api::{Service, ServiceState};

    fn service(name: &str, scaling: Option<Scaling>) -> Service {
        Service {
            name: name.to_string(),
            state: ServiceState::Running,
            image: String::new(),
            desired: 0,
            running: 2,
            publish: None,
            instances: Vec::new(),
            error: None,
            unplaced: None,
            dropped_log_lines: 0,
            scaling,
        }
    }

    #[test]
    fn rows_show_the_counts_the_bound_and_the_last_reason() {
        let scaling = Scaling {
            desired: 3,
            ready: 2,
            max: 4,
            max_why: "surge 2026-11-27".into(),
            in_flight: 31,
            held: vec![Held {
                board: "pi-a".into(),
                count: 5,
            }],
            oldest_held_ms: Some(120),
            decisions: vec![Decision {
                at_ms: 1,
                count: 3,
                reason: "2 -> 3: 31 in flight, target 10".into(),
            }],
            clock_synced: true,
            ..Scaling::default()
        };
        let list = ServiceList {
            services: vec![service("web", Some(scaling)), service("old", None)],
            errors: Vec::new(),
        };
        let text = table(&list);
        let row = text.lines().find(|l| l.starts_with("web")).expect("row");
        for part in [
            "3",
            "2",
            "31",
            "4 (surge 2026-11-27)",
            "2 -> 3: 31 in flight",
        ] {
            assert!(row.contains(part), "{part} in {row}");
        }
        assert!(!text.contains("\nold"), "{text}");
        assert!(text.contains("web: 5 requests held, the oldest here for 120 ms"));
        assert!(!text.contains("clock"));
    }

    #[test]
    fn nothing_without_scaling() {
        let list = ServiceList {
            services: vec![service("old", None)],
            errors: Vec::new(),
        };
        assert_eq!(table(&list), "");
    }
}
