//! Settings a spec accepts that nothing acts on yet: the front door and the autoscaler that
//! will read them are still to come. `baton apply` and `docs/services.md` say so, so that
//! nobody relies on them by mistake.

use super::{defaults, ServiceSpec};

/// One accepted setting that has no effect yet, and what the board does instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The field, as written in the spec (`scale.max`, `route`).
    pub field: &'static str,
    /// What happens today.
    pub today: &'static str,
}

impl ServiceSpec {
    /// The settings of this spec that are accepted but not acted on yet (empty when it uses
    /// none of them).
    pub fn pending_settings(&self) -> Vec<Pending> {
        let scale = &self.scale;
        let mut pending = Vec::new();
        let mut note = |set: bool, field, today| {
            if set {
                pending.push(Pending { field, today });
            }
        };
        note(
            scale.min == 0,
            "scale.min = 0",
            "no instance runs, and nothing starts one on demand",
        );
        note(
            scale.max != defaults::scale_max(scale.min),
            "scale.max",
            "exactly scale.min instances run",
        );
        note(
            scale.idle_after != defaults::IDLE_AFTER,
            "scale.idle_after",
            "instances are not stopped when idle",
        );
        note(
            scale.target_concurrency != defaults::TARGET_CONCURRENCY,
            "scale.target_concurrency",
            "the instance count does not follow the load",
        );
        note(
            scale.window != defaults::SCALE_WINDOW,
            "scale.window",
            "the instance count does not follow the load",
        );
        note(
            scale.panic != defaults::SCALE_PANIC,
            "scale.panic",
            "the instance count does not follow the load",
        );
        note(
            scale.hold_queue != defaults::HOLD_QUEUE,
            "scale.hold_queue",
            "requests are not held while no instance is ready",
        );
        note(
            scale.hold_timeout != defaults::HOLD_TIMEOUT,
            "scale.hold_timeout",
            "requests are not held while no instance is ready",
        );
        note(
            scale.idle != defaults::SCALE_IDLE,
            "scale.idle",
            "idle instances are neither stopped nor frozen",
        );
        note(
            self.route.is_some(),
            "route",
            "there is no front door yet; use publish",
        );
        note(
            !self.surge.is_empty(),
            "surge",
            "scale.max is not raised on its dates",
        );
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> ServiceSpec {
        let text =
            format!("name = \"web\"\nimage = \"oci-archive:images/web.tar\"\nport = 8080\n{extra}");
        ServiceSpec::parse("services/web.toml", &text).expect("valid spec")
    }

    fn fields(extra: &str) -> Vec<&'static str> {
        spec(extra)
            .pending_settings()
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn a_plain_spec_uses_nothing_pending() {
        assert!(fields("").is_empty());
        assert!(fields("scale = { min = 3 }\n").is_empty());
    }

    #[test]
    fn each_setting_that_nothing_acts_on_is_named() {
        assert_eq!(
            fields("scale = { min = 0, max = 4, idle_after = \"1m\", target_concurrency = 5 }\n"),
            [
                "scale.min = 0",
                "scale.max",
                "scale.idle_after",
                "scale.target_concurrency"
            ]
        );
        assert_eq!(
            fields(
                "route = { host = \"shop.lan\" }\n[[surge]]\ndates = [\"2026-11-27\"]\nmax = 2\n"
            ),
            ["route", "surge"]
        );
        assert_eq!(
            fields("scale = { window = \"30s\", panic = 300, hold_queue = 5, hold_timeout = \"5s\", idle = \"freeze\" }\n"),
            [
                "scale.window",
                "scale.panic",
                "scale.hold_queue",
                "scale.hold_timeout",
                "scale.idle"
            ]
        );
        assert!(fields("scale = { window = \"1m\", panic = 200, hold_queue = 100, hold_timeout = \"30s\", idle = \"stop\" }\n").is_empty());
    }
}
