//! A service's scaling as `GET /v1/services` shows it.

use baton_api::scaling::{Decision, Scaling};

use super::Handles;

/// The scaling of service `name`, once the board decided on it.
pub(super) fn of(handles: &Handles, name: &str) -> Option<Scaling> {
    let scaler = handles.scaler()?;
    let shown = scaler.shown(name)?;
    let oldest_held_ms = handles
        .front_door()
        .and_then(|fd| fd.shared.oldest_held_ms(name));
    Some(Scaling {
        oldest_held_ms,
        decisions: scaler
            .decisions(name)
            .into_iter()
            .map(|e| Decision {
                at_ms: e.at_ms,
                count: e.count,
                reason: e.reason,
            })
            .collect(),
        clock_synced: handles.state.clock().synced,
        ..shown
    })
}
