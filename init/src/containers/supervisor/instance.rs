//! One instance's life as a pure state machine: `(state, event, now) -> actions`.
//!
//! The supervisor feeds it what happened (started, exited, a health result, a timer, a stop
//! request) and carries out the actions it returns (start the container, signal it, arm a
//! timer, forget it). Nothing here touches the system, so every rule is unit-tested:
//!
//! - `restart`: `always` restarts after every exit, `on-failure` after a non-zero exit or a
//!   kill, `never` not at all. A stop requested by the supervisor is never restarted.
//! - Backoff: a restart waits [`BACKOFF_START`], doubled after every exit that came sooner
//!   than [`STABLE_AFTER`] after its start, up to [`BACKOFF_MAX`]; an instance that ran
//!   stably starts over at [`BACKOFF_START`].
//! - Crash loop: once the wait reaches [`CRASH_LOOP_AT`], the instance shows `crash-loop`
//!   instead of `backoff` until it runs stably again.
//! - Graceful stop: SIGTERM, then SIGKILL when `stop_timeout` passes without an exit.
//! - Health: `retries` failed checks in a row after `start_period` and one `interval` mark the
//!   instance unhealthy; an unhealthy instance is stopped and, unless its policy is `never`,
//!   restarted. The grace counts from the start, and again from a thaw (the probes restart then,
//!   fast, and their first failures must not count).

use std::time::{Duration, Instant};

use baton_spec::service::RestartPolicy;

/// First wait before a restart.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest wait before a restart.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// From this wait on, the instance is shown as crash-looping.
pub const CRASH_LOOP_AT: Duration = Duration::from_secs(16);
/// An instance that ran this long before exiting ran stably: its backoff starts over.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// What an instance is doing (the API shows it as [`baton_api::InstancePhase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Being created and started.
    Starting,
    /// Its process runs.
    Running,
    /// SIGTERM sent, waiting for it to exit.
    Stopping,
    /// Waiting before a restart.
    Backoff,
    /// Waiting before a restart after many quick failures.
    CrashLoop,
    /// Exited and not restarted (policy, or a requested stop).
    Stopped,
}

/// How an instance's process ended (the API shows it as [`baton_api::ExitStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal, if it was killed.
    pub signal: Option<i32>,
    /// Whether the kernel's OOM killer ended it.
    pub oom_killed: bool,
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.oom_killed
    }
}

/// Something that happened to the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The container is running.
    Started,
    /// Creating or starting the container failed.
    StartFailed(String),
    /// The process ended.
    Exited(ExitStatus),
    /// A health check finished.
    Health(bool),
    /// The supervisor wants the instance gone (spec removed or changed, shutdown).
    Stop,
    /// The instance's timer expired.
    Timer,
    /// The instance was thawed after a freeze: its health checks start over, with a new grace.
    Thawed,
}

/// What the supervisor must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create and start the container.
    Start,
    /// Send SIGTERM.
    Terminate,
    /// Send SIGKILL.
    Kill,
    /// Call back with [`Event::Timer`] at this time (replaces any earlier timer).
    Timer(Instant),
    /// The instance is over and will not run again: release its resources.
    Release,
}

/// The state of one instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Current phase.
    pub phase: Phase,
    /// Restarts so far.
    pub restarts: u32,
    /// When the current run started.
    pub started_at: Option<Instant>,
    /// How the last run ended.
    pub last_exit: Option<ExitStatus>,
    /// Last start error.
    pub last_error: Option<String>,
    /// OOM kills so far.
    pub oom_kills: u32,
    /// Health: `None` until known.
    pub healthy: Option<bool>,
    failures: u32,
    backoff: Duration,
    stop_requested: bool,
    restart_after_stop: bool,
    /// Since when failed checks are in their grace (the start, or the last thaw).
    probing_since: Option<Instant>,
}

/// The rules an instance follows, from its service spec.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Restart policy.
    pub restart: RestartPolicy,
    /// SIGTERM-to-SIGKILL time.
    pub stop_timeout: Duration,
    /// Failed checks in a row that make an instance unhealthy.
    pub health_retries: u32,
    /// Grace period after a start in which failed checks do not count.
    pub health_start_period: Duration,
    /// Time between checks once one passed; the grace lasts one more of it, because the
    /// first checks come fast and a slow starter must not be restarted sooner for that.
    pub health_interval: Duration,
}

impl Instance {
    /// A new instance, to be started at once: returns it with [`Action::Start`].
    pub fn new() -> (Instance, Vec<Action>) {
        let instance = Instance {
            phase: Phase::Starting,
            restarts: 0,
            started_at: None,
            last_exit: None,
            last_error: None,
            oom_kills: 0,
            healthy: None,
            failures: 0,
            backoff: Duration::ZERO,
            stop_requested: false,
            restart_after_stop: false,
            probing_since: None,
        };
        (instance, vec![Action::Start])
    }

    /// Applies `event` at `now` under `policy`.
    pub fn handle(&mut self, event: Event, now: Instant, policy: &Policy) -> Vec<Action> {
        match event {
            Event::Started => {
                if self.phase != Phase::Starting {
                    return Vec::new();
                }
                self.phase = Phase::Running;
                self.started_at = Some(now);
                self.probing_since = Some(now);
                self.healthy = None;
                self.failures = 0;
                if self.stop_requested {
                    return self.begin_stop(now, policy);
                }
                Vec::new()
            }
            Event::StartFailed(message) => {
                self.last_error = Some(message);
                let restart = policy.restart != RestartPolicy::Never && !self.stop_requested;
                self.after_run(now, restart)
            }
            Event::Exited(status) => {
                if status.oom_killed {
                    self.oom_kills += 1;
                }
                self.last_exit = Some(status);
                let restartable = match policy.restart {
                    RestartPolicy::Always => true,
                    RestartPolicy::OnFailure => !status.success(),
                    RestartPolicy::Never => false,
                };
                let restart = (restartable
                    || self.restart_after_stop && policy.restart != RestartPolicy::Never)
                    && !self.stop_requested;
                self.after_run(now, restart)
            }
            Event::Health(ok) => self.health(ok, now, policy),
            Event::Stop => {
                self.stop_requested = true;
                match self.phase {
                    Phase::Running => self.begin_stop(now, policy),
                    Phase::Backoff | Phase::CrashLoop => {
                        self.phase = Phase::Stopped;
                        vec![Action::Release]
                    }
                    // Starting: stopped as soon as it reports Started (or fails).
                    Phase::Starting | Phase::Stopping | Phase::Stopped => Vec::new(),
                }
            }
            Event::Thawed => {
                if self.phase == Phase::Running {
                    self.failures = 0;
                    self.probing_since = Some(now);
                }
                Vec::new()
            }
            Event::Timer => match self.phase {
                Phase::Stopping => vec![Action::Kill],
                Phase::Backoff | Phase::CrashLoop => {
                    self.phase = Phase::Starting;
                    self.restarts += 1;
                    vec![Action::Start]
                }
                _ => Vec::new(),
            },
        }
    }

    fn begin_stop(&mut self, now: Instant, policy: &Policy) -> Vec<Action> {
        self.phase = Phase::Stopping;
        vec![Action::Terminate, Action::Timer(now + policy.stop_timeout)]
    }

    /// After a run ended (or never began): restart after a backoff, or stop for good.
    fn after_run(&mut self, now: Instant, restart: bool) -> Vec<Action> {
        let ran = self.started_at.map(|s| now.saturating_duration_since(s));
        self.started_at = None;
        self.probing_since = None;
        self.healthy = None;
        self.restart_after_stop = false;
        if !restart {
            self.phase = Phase::Stopped;
            return vec![Action::Release];
        }
        self.backoff = match ran {
            Some(d) if d >= STABLE_AFTER => BACKOFF_START,
            _ if self.backoff.is_zero() => BACKOFF_START,
            _ => (self.backoff * 2).min(BACKOFF_MAX),
        };
        self.phase = if self.backoff >= CRASH_LOOP_AT {
            Phase::CrashLoop
        } else {
            Phase::Backoff
        };
        vec![Action::Timer(now + self.backoff)]
    }

    fn health(&mut self, ok: bool, now: Instant, policy: &Policy) -> Vec<Action> {
        if self.phase != Phase::Running {
            return Vec::new();
        }
        if ok {
            self.failures = 0;
            self.healthy = Some(true);
            return Vec::new();
        }
        let grace = policy.health_start_period + policy.health_interval;
        let in_grace = self
            .probing_since
            .is_some_and(|s| now.saturating_duration_since(s) < grace);
        if in_grace {
            return Vec::new();
        }
        self.failures += 1;
        if self.failures < policy.health_retries.max(1) {
            return Vec::new();
        }
        self.healthy = Some(false);
        self.restart_after_stop = true;
        self.begin_stop(now, policy)
    }

    /// The wait before the next restart (zero before the first failure).
    pub fn backoff(&self) -> Duration {
        self.backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(restart: RestartPolicy) -> Policy {
        Policy {
            restart,
            stop_timeout: Duration::from_secs(10),
            health_retries: 3,
            health_start_period: Duration::from_secs(5),
            health_interval: Duration::from_secs(1),
        }
    }

    fn exit(code: i32) -> Event {
        Event::Exited(ExitStatus {
            code: Some(code),
            signal: None,
            oom_killed: false,
        })
    }

    fn running(now: Instant, p: &Policy) -> Instance {
        let (mut i, actions) = Instance::new();
        assert_eq!(actions, [Action::Start]);
        assert!(i.handle(Event::Started, now, p).is_empty());
        assert_eq!(i.phase, Phase::Running);
        i
    }

    #[test]
    fn restart_policies_decide_after_an_exit() {
        let t = Instant::now();
        for (restart, code, restarts) in [
            (RestartPolicy::Always, 0, true),
            (RestartPolicy::Always, 1, true),
            (RestartPolicy::OnFailure, 0, false),
            (RestartPolicy::OnFailure, 3, true),
            (RestartPolicy::Never, 1, false),
        ] {
            let p = policy(restart);
            let mut i = running(t, &p);
            let actions = i.handle(exit(code), t + Duration::from_secs(1), &p);
            if restarts {
                assert_eq!(
                    actions,
                    [Action::Timer(t + Duration::from_secs(2))],
                    "{restart:?} {code}"
                );
                assert_eq!(i.phase, Phase::Backoff);
                assert_eq!(
                    i.handle(Event::Timer, t + Duration::from_secs(2), &p),
                    [Action::Start]
                );
                assert_eq!((i.phase, i.restarts), (Phase::Starting, 1));
            } else {
                assert_eq!(actions, [Action::Release], "{restart:?} {code}");
                assert_eq!(i.phase, Phase::Stopped);
            }
        }
    }

    #[test]
    fn an_oom_kill_is_a_failure_and_is_counted() {
        let t = Instant::now();
        let p = policy(RestartPolicy::OnFailure);
        let mut i = running(t, &p);
        let oom = ExitStatus {
            code: None,
            signal: Some(9),
            oom_killed: true,
        };
        assert_eq!(i.handle(Event::Exited(oom), t, &p).len(), 1);
        assert_eq!((i.phase, i.oom_kills), (Phase::Backoff, 1));
        assert_eq!(i.last_exit, Some(oom));
    }

    #[test]
    fn quick_failures_back_off_exponentially_into_a_crash_loop_and_stable_runs_reset() {
        let p = policy(RestartPolicy::Always);
        let mut t = Instant::now();
        let mut i = running(t, &p);
        let mut waits = Vec::new();
        for _ in 0..8 {
            t += Duration::from_secs(1);
            let actions = i.handle(exit(1), t, &p);
            let [Action::Timer(at)] = actions[..] else {
                panic!("{actions:?}")
            };
            waits.push((at - t).as_secs());
            t = at;
            assert_eq!(i.handle(Event::Timer, t, &p), [Action::Start]);
            i.handle(Event::Started, t, &p);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(i.restarts, 8);
        t += Duration::from_secs(1);
        i.handle(exit(1), t, &p);
        assert_eq!(i.phase, Phase::CrashLoop);
        // A run longer than STABLE_AFTER starts the backoff over.
        t += i.backoff();
        i.handle(Event::Timer, t, &p);
        i.handle(Event::Started, t, &p);
        t += STABLE_AFTER;
        assert_eq!(i.handle(exit(1), t, &p), [Action::Timer(t + BACKOFF_START)]);
        assert_eq!(i.phase, Phase::Backoff);
    }

    #[test]
    fn a_failed_start_backs_off_like_a_crash() {
        let t = Instant::now();
        let p = policy(RestartPolicy::Never);
        let (mut i, _) = Instance::new();
        assert_eq!(
            i.handle(Event::StartFailed("no image".into()), t, &p),
            [Action::Release]
        );
        assert_eq!(i.last_error.as_deref(), Some("no image"));
        let p = policy(RestartPolicy::Always);
        let (mut i, _) = Instance::new();
        assert_eq!(
            i.handle(Event::StartFailed("no image".into()), t, &p),
            [Action::Timer(t + BACKOFF_START)]
        );
    }

    #[test]
    fn a_stop_terminates_then_kills_and_is_never_restarted() {
        let t = Instant::now();
        let p = policy(RestartPolicy::Always);
        let mut i = running(t, &p);
        assert_eq!(
            i.handle(Event::Stop, t, &p),
            [Action::Terminate, Action::Timer(t + p.stop_timeout)]
        );
        assert_eq!(i.phase, Phase::Stopping);
        assert_eq!(
            i.handle(Event::Timer, t + p.stop_timeout, &p),
            [Action::Kill]
        );
        let killed = ExitStatus {
            code: None,
            signal: Some(9),
            oom_killed: false,
        };
        assert_eq!(
            i.handle(Event::Exited(killed), t + p.stop_timeout, &p),
            [Action::Release]
        );
        assert_eq!(i.phase, Phase::Stopped);
    }

    #[test]
    fn a_stop_during_start_or_backoff_is_honoured() {
        let t = Instant::now();
        let p = policy(RestartPolicy::Always);
        let (mut i, _) = Instance::new();
        assert!(i.handle(Event::Stop, t, &p).is_empty());
        assert_eq!(
            i.handle(Event::Started, t, &p),
            [Action::Terminate, Action::Timer(t + p.stop_timeout)]
        );
        let mut i = running(t, &p);
        i.handle(exit(1), t, &p);
        assert_eq!(i.handle(Event::Stop, t, &p), [Action::Release]);
        assert_eq!(i.phase, Phase::Stopped);
    }

    #[test]
    fn unhealthy_instances_are_restarted_after_the_grace_period_and_retries() {
        let t = Instant::now();
        let p = policy(RestartPolicy::Always);
        let mut i = running(t, &p);
        // Failures in the start period do not count.
        assert!(i
            .handle(Event::Health(false), t + Duration::from_secs(1), &p)
            .is_empty());
        let later = t + Duration::from_secs(6);
        assert!(i.handle(Event::Health(false), later, &p).is_empty());
        assert!(i.handle(Event::Health(true), later, &p).is_empty());
        assert_eq!(i.healthy, Some(true));
        assert!(i.handle(Event::Health(false), later, &p).is_empty());
        assert!(i.handle(Event::Health(false), later, &p).is_empty());
        assert_eq!(
            i.handle(Event::Health(false), later, &p),
            [Action::Terminate, Action::Timer(later + p.stop_timeout)]
        );
        assert_eq!(i.healthy, Some(false));
        // It exits with 0 after SIGTERM and is still restarted, being unhealthy.
        assert_eq!(
            i.handle(exit(0), later, &p),
            [Action::Timer(later + BACKOFF_START)]
        );
    }

    #[test]
    fn fast_early_failures_and_those_after_a_thaw_are_in_the_grace() {
        let t = Instant::now();
        let p = policy(RestartPolicy::Always);
        let mut i = running(t, &p);
        // Many fast failures inside start period + one interval (6 s) count for nothing.
        for ms in (0..6000).step_by(200) {
            let at = t + Duration::from_millis(ms);
            assert!(i.handle(Event::Health(false), at, &p).is_empty(), "{ms}");
        }
        assert_eq!((i.phase, i.healthy), (Phase::Running, None));
        let thawed = t + Duration::from_secs(60);
        assert!(i.handle(Event::Health(false), thawed, &p).is_empty());
        // A thaw starts the grace over and forgets the failure.
        assert!(i.handle(Event::Thawed, thawed, &p).is_empty());
        for _ in 0..5 {
            assert!(i.handle(Event::Health(false), thawed, &p).is_empty());
        }
        let after = thawed + Duration::from_secs(6);
        assert!(i.handle(Event::Health(false), after, &p).is_empty());
        assert!(i.handle(Event::Health(false), after, &p).is_empty());
        assert_eq!(
            i.handle(Event::Health(false), after, &p)[0],
            Action::Terminate
        );
    }

    #[test]
    fn unhealthy_with_policy_never_is_stopped_for_good() {
        let t = Instant::now();
        let p = Policy {
            health_retries: 1,
            health_start_period: Duration::ZERO,
            health_interval: Duration::ZERO,
            ..policy(RestartPolicy::Never)
        };
        let mut i = running(t, &p);
        assert_eq!(i.handle(Event::Health(false), t, &p)[0], Action::Terminate);
        assert_eq!(i.handle(exit(0), t, &p), [Action::Release]);
    }
}
