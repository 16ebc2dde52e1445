//! Which events an instance's step raises: a pure judgement of the machine's event and its phase
//! and readiness before and after (see [`super::reconcile`]'s `feed`).

use baton_api::events::What;

use super::instance::{Event, Phase};

/// An instance's phase and whether it took requests.
pub(super) type Seen = (Phase, bool);

/// What one step of an instance raises.
pub(super) struct Step<'a> {
    /// Its service.
    pub service: &'a str,
    /// Its id (`web-2`).
    pub instance: String,
    /// The machine's event.
    pub event: &'a Event,
    /// Before and after the machine handled it.
    pub before: Seen,
    pub after: Seen,
    /// Whether its health checks had failed before the event (a stop then was the board's
    /// answer to them).
    pub unhealthy: bool,
    /// Restarts of its slot, after.
    pub restarts: u32,
    /// Launch to running, when measured.
    pub start_ms: Option<u64>,
}

/// The events of `step`, in order.
pub(super) fn instance(step: Step<'_>) -> Vec<What> {
    let (service, instance) = (step.service.to_string(), step.instance);
    let mut raised = Vec::new();
    let ((was, was_ready), (now, ready)) = (step.before, step.after);
    match step.event {
        Event::Started if was == Phase::Starting && now == Phase::Running => {
            raised.push(What::InstanceStarted {
                service: service.clone(),
                instance: instance.clone(),
                restarts: step.restarts,
                start_ms: step.start_ms,
            });
        }
        Event::StartFailed(message) => raised.push(What::InstanceCrashed {
            service: service.clone(),
            instance: instance.clone(),
            exit: None,
            error: Some(message.clone()),
            restarts: step.restarts,
            next: now.into(),
        }),
        Event::Exited(status)
            if (was == Phase::Running && !status.success())
                || (was == Phase::Stopping && step.unhealthy) =>
        {
            raised.push(What::InstanceCrashed {
                service: service.clone(),
                instance: instance.clone(),
                exit: Some((*status).into()),
                error: (was == Phase::Stopping)
                    .then(|| "stopped after failing its health checks".to_string()),
                restarts: step.restarts,
                next: now.into(),
            });
        }
        // A clean end (restarted or not), or the end of a stop the board asked for.
        Event::Exited(status) if was != Phase::Stopped => {
            raised.push(What::InstanceStopped {
                service: service.clone(),
                instance: instance.clone(),
                exit: Some((*status).into()),
            });
        }
        Event::Stop if now == Phase::Stopped && was != Phase::Stopped => {
            raised.push(What::InstanceStopped {
                service: service.clone(),
                instance: instance.clone(),
                exit: None,
            });
        }
        _ => {}
    }
    if ready && !was_ready {
        raised.push(What::InstanceReady { service, instance });
    }
    raised
}

#[cfg(test)]
mod tests {
    use super::super::instance::ExitStatus;
    use super::*;

    fn step(event: &Event, before: Seen, after: Seen) -> Vec<&'static str> {
        instance(Step {
            service: "web",
            instance: "web-1".into(),
            event,
            before,
            after,
            unhealthy: false,
            restarts: 1,
            start_ms: Some(250),
        })
        .iter()
        .map(What::kind)
        .collect()
    }

    const OOM: ExitStatus = ExitStatus {
        code: None,
        signal: Some(9),
        oom_killed: true,
    };
    const CLEAN: ExitStatus = ExitStatus {
        code: Some(0),
        signal: None,
        oom_killed: false,
    };

    #[test]
    fn a_start_raises_started_and_ready_when_it_takes_requests_at_once() {
        let started = Event::Started;
        assert_eq!(
            step(&started, (Phase::Starting, false), (Phase::Running, true)),
            ["instance-started", "instance-ready"]
        );
        // With a health check, ready comes with the first good check.
        assert_eq!(
            step(&started, (Phase::Starting, false), (Phase::Running, false)),
            ["instance-started"]
        );
        assert_eq!(
            step(
                &Event::Health(true),
                (Phase::Running, false),
                (Phase::Running, true)
            ),
            ["instance-ready"]
        );
        // A check that stays good raises nothing.
        assert!(step(
            &Event::Health(true),
            (Phase::Running, true),
            (Phase::Running, true)
        )
        .is_empty());
    }

    #[test]
    fn a_failed_run_is_a_crash_and_a_clean_end_or_a_stop_is_not() {
        assert_eq!(
            step(
                &Event::Exited(OOM),
                (Phase::Running, true),
                (Phase::Backoff, false)
            ),
            ["instance-crashed"]
        );
        assert_eq!(
            step(
                &Event::StartFailed("no image".into()),
                (Phase::Starting, false),
                (Phase::Backoff, false)
            ),
            ["instance-crashed"]
        );
        assert_eq!(
            step(
                &Event::Exited(CLEAN),
                (Phase::Running, true),
                (Phase::Stopped, false)
            ),
            ["instance-stopped"]
        );
        assert_eq!(
            step(
                &Event::Exited(CLEAN),
                (Phase::Stopping, false),
                (Phase::Stopped, false)
            ),
            ["instance-stopped"]
        );
        assert_eq!(
            step(
                &Event::Stop,
                (Phase::Backoff, false),
                (Phase::Stopped, false)
            ),
            ["instance-stopped"]
        );
        // A SIGTERM sent to stop it is not a crash, and a restart timer raises nothing.
        let term = ExitStatus {
            code: None,
            signal: Some(15),
            oom_killed: false,
        };
        assert_eq!(
            step(
                &Event::Exited(term),
                (Phase::Stopping, false),
                (Phase::Stopped, false)
            ),
            ["instance-stopped"]
        );
        assert!(step(
            &Event::Timer,
            (Phase::Backoff, false),
            (Phase::Starting, false)
        )
        .is_empty());
    }

    #[test]
    fn a_kill_after_failed_health_checks_is_a_crash_and_a_clean_end_restarted_is_a_stop() {
        let term = ExitStatus {
            code: None,
            signal: Some(15),
            oom_killed: false,
        };
        let raised = instance(Step {
            service: "web",
            instance: "web-1".into(),
            event: &Event::Exited(term),
            before: (Phase::Stopping, false),
            after: (Phase::Backoff, false),
            unhealthy: true,
            restarts: 0,
            start_ms: None,
        });
        let [What::InstanceCrashed {
            error: Some(why), ..
        }] = raised.as_slice()
        else {
            panic!("{raised:?}");
        };
        assert!(why.contains("health"), "{why}");
        // restart = "always": a clean exit is followed by a restart, and is a stop, not a crash.
        assert_eq!(
            step(
                &Event::Exited(CLEAN),
                (Phase::Running, true),
                (Phase::Backoff, false)
            ),
            ["instance-stopped"]
        );
    }

    #[test]
    fn a_crash_names_what_comes_next() {
        let raised = instance(Step {
            service: "web",
            instance: "web-1".into(),
            event: &Event::Exited(OOM),
            before: (Phase::Running, true),
            after: (Phase::CrashLoop, false),
            unhealthy: false,
            restarts: 5,
            start_ms: None,
        });
        let [What::InstanceCrashed {
            exit: Some(exit),
            next,
            restarts: 5,
            ..
        }] = raised.as_slice()
        else {
            panic!("{raised:?}");
        };
        assert!(exit.oom_killed);
        assert_eq!(*next, baton_api::InstancePhase::CrashLoop);
    }
}
