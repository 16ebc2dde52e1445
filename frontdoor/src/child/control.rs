//! The control loop of a running front door: `Hello` in, the listeners up, `Ready` out; then
//! snapshots and instance lists in, the heartbeat (`Load`, every second) and `Wake`s out,
//! until `Drain` or a failed channel.
//!
//! One writer task owns sending, fed by a small bounded queue: everything queued is state or
//! a hint (a dropped `Load` is a missed second, a dropped `Wake` comes again a second later),
//! so a full queue drops and nothing that serves requests ever waits for the init.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::listeners::Listeners;
use super::{EXIT_CHANNEL, EXIT_PANIC, EXIT_PROTOCOL};
use crate::config::Snapshot;
use crate::control::channel::Channel;
use crate::control::frame::Error as FrameError;
use crate::control::protocol::{
    Invalid, ToFrontDoor, ToInit, MAX_HELD, MAX_NOTES, MAX_TALLIES, MAX_TEXT, PROTOCOL,
};
use crate::control::snapshot;
use crate::state::State;
use crate::tally::ServiceTally;

/// Access lines in one `Access` frame (each at most about 1.5 KiB of JSON).
const ACCESS_PER_FRAME: usize = 128;
/// `Access` frames a second at most; lines beyond wait in the bounded queue.
const ACCESS_FRAMES: usize = 4;

/// How often `Load` goes (the heartbeat: the init restarts a front door silent for 10 s).
pub(super) const LOAD_PERIOD: Duration = Duration::from_secs(1);
/// How often idle upstream connections are swept.
const SWEEP_PERIOD: Duration = Duration::from_secs(5);
/// Messages waiting for the writer.
const OUT_QUEUE: usize = 8;
/// Wake-ups waiting to be forwarded (the holds drop beyond, and send again a second later).
const WAKE_QUEUE: usize = 64;
/// How often a drain looks whether requests are still in flight.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// How a control task ended.
enum End {
    /// The init asked to drain within this time.
    Drain(Duration),
    /// Exit with this code.
    Exit(i32),
}

/// Runs the front door on `sock`; `notes` (from the sandbox) go with `Ready`.
pub(super) async fn run(sock: OwnedFd, notes: Vec<String>) -> i32 {
    let channel = match Channel::new(sock) {
        Ok(channel) => Arc::new(channel),
        Err(e) => return fail(format_args!("the control socket: {e}")),
    };
    let (kinds, fds) = match channel.recv::<ToFrontDoor>().await {
        Ok((
            ToFrontDoor::Hello {
                listeners, build, ..
            },
            fds,
        )) => {
            eprintln!("baton-front-door: started by init {build:?}, listeners {listeners:?}");
            (listeners, fds)
        }
        Err(FrameError::Invalid(Invalid::Protocol { got })) => {
            eprintln!(
                "baton-front-door: the init speaks control protocol {got}, this is {PROTOCOL}"
            );
            return EXIT_PROTOCOL;
        }
        Ok((other, _)) => return fail(format_args!("expected Hello, got {}", name(&other))),
        Err(e) => return fail(format_args!("{e}")),
    };
    let (wake, wakes) = mpsc::channel(WAKE_QUEUE);
    let state = Arc::new(State::new(wake));
    let listeners = match Listeners::start(&kinds, fds, &state) {
        Ok(listeners) => Arc::new(listeners),
        Err(e) => return fail(format_args!("{e}")),
    };
    let ready = ToInit::Ready {
        protocol: PROTOCOL,
        notes: bounded_notes(notes),
    };
    if let Err(e) = channel.send(&ready, &[]).await {
        return fail(format_args!("{e}"));
    }
    let (out, queue) = mpsc::channel(OUT_QUEUE);
    let mut tasks = JoinSet::new();
    tasks.spawn(write_loop(Arc::clone(&channel), queue));
    tasks.spawn(read_loop(
        channel,
        Arc::clone(&state),
        Arc::clone(&listeners),
    ));
    tasks.spawn(load_loop(Arc::clone(&state), out.clone()));
    // The identity provider's documents (it runs for the process's life; never ends alone).
    let idp = Arc::clone(&state.idp);
    let fetched = out.clone();
    tasks.spawn(async move {
        crate::idp::fetch::run(idp, fetched).await;
        End::Exit(EXIT_CHANNEL)
    });
    tasks.spawn(wake_loop(wakes, out));
    tasks.spawn(sweep_loop(Arc::clone(&state)));
    match tasks.join_next().await {
        Some(Ok(End::Drain(within))) => {
            listeners.stop();
            drain(&state, within).await;
            0
        }
        Some(Ok(End::Exit(code))) => code,
        Some(Err(e)) if e.is_panic() => EXIT_PANIC,
        Some(Err(_)) | None => EXIT_CHANNEL,
    }
    // Dropping `tasks` ends the other control tasks.
}

fn fail(what: std::fmt::Arguments<'_>) -> i32 {
    eprintln!("baton-front-door: control channel: {what}");
    EXIT_CHANNEL
}

fn name(message: &ToFrontDoor) -> &'static str {
    match message {
        ToFrontDoor::Hello { .. } => "Hello",
        ToFrontDoor::Snapshot { .. } => "Snapshot",
        ToFrontDoor::Instances { .. } => "Instances",
        ToFrontDoor::Drain { .. } => "Drain",
    }
}

/// The notes within `Ready`'s bounds (cut, never refused).
fn bounded_notes(mut notes: Vec<String>) -> Vec<String> {
    notes.truncate(MAX_NOTES);
    for note in &mut notes {
        if note.len() > MAX_TEXT {
            let mut end = MAX_TEXT;
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            note.truncate(end);
        }
    }
    notes
}

/// Reads the init's messages until `Drain` or an error.
async fn read_loop(channel: Arc<Channel>, state: Arc<State>, listeners: Arc<Listeners>) -> End {
    loop {
        let (message, fds) = match channel.recv::<ToFrontDoor>().await {
            Ok(received) => received,
            Err(FrameError::Closed) => {
                eprintln!("baton-front-door: the init closed the control channel");
                return End::Exit(EXIT_CHANNEL);
            }
            Err(e) => return End::Exit(fail(format_args!("{e}"))),
        };
        match message {
            ToFrontDoor::Snapshot { generation } => {
                // The frame's check made sure exactly one descriptor came with it.
                let Some(fd) = fds.first() else {
                    return End::Exit(fail(format_args!("Snapshot without its memfd")));
                };
                apply(&state, generation, fd);
                listeners.settings_changed(&state);
            }
            ToFrontDoor::Instances {
                generation,
                service,
                instances,
            } => {
                if !state.set_instances(&service, instances) {
                    eprintln!(
                        "baton-front-door: instances of {service:?} (generation {generation}) ignored: not a service of the configuration in force"
                    );
                }
            }
            ToFrontDoor::Drain { within_ms } => {
                return End::Drain(Duration::from_millis(within_ms))
            }
            ToFrontDoor::Hello { .. } => {
                return End::Exit(fail(format_args!("a second Hello")));
            }
        }
    }
}

/// Puts the snapshot in `fd` in force; a snapshot that cannot be read or is refused leaves the
/// one in force (the init's checks make that a bug to report, not a reason to stop serving).
fn apply(state: &State, generation: u64, fd: &OwnedFd) {
    let snapshot: Snapshot = match snapshot::read_json(fd) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            eprintln!("baton-front-door: snapshot {generation} not applied: {e}");
            return;
        }
    };
    match state.apply(generation, snapshot) {
        Ok(notes) => {
            for note in notes {
                eprintln!("baton-front-door: snapshot {generation}: {note}");
            }
        }
        Err(e) => eprintln!("baton-front-door: snapshot {generation} refused: {e}"),
    }
}

/// Sends what the other tasks queue, one frame at a time.
async fn write_loop(channel: Arc<Channel>, mut queue: mpsc::Receiver<ToInit>) -> End {
    while let Some(message) = queue.recv().await {
        if let Err(e) = send(&channel, message).await {
            return End::Exit(fail(format_args!("{e}")));
        }
    }
    End::Exit(EXIT_CHANNEL)
}

/// Sends `message`; a `Load` too large for one frame (long instance ids) goes as several.
async fn send(channel: &Channel, message: ToInit) -> Result<(), FrameError> {
    let mut pending = vec![message];
    while let Some(message) = pending.pop() {
        match channel.send(&message, &[]).await {
            Err(e @ FrameError::TooLarge { .. }) => match message {
                ToInit::Load {
                    mut instances,
                    held,
                } if instances.len() > 1 => {
                    let rest = instances.split_off(instances.len() / 2);
                    pending.push(ToInit::Load {
                        instances: rest,
                        held: Vec::new(),
                    });
                    pending.push(ToInit::Load { instances, held });
                }
                _ => return Err(e),
            },
            other => other?,
        }
    }
    Ok(())
}

/// Queues a `Load` every [`LOAD_PERIOD`]; a full queue drops it (the counts of that second are
/// lost, the next report carries on).
async fn load_loop(state: Arc<State>, out: mpsc::Sender<ToInit>) -> End {
    let mut tick = tokio::time::interval(LOAD_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The request totals last sent, by service: only what changed is sent again.
    let mut sent: BTreeMap<String, ServiceTally> = BTreeMap::new();
    loop {
        tick.tick().await;
        if send_tallies(&state, &out, &mut sent).is_err() {
            return End::Exit(EXIT_CHANNEL);
        }
        let mut held = state.holds.held(tokio::time::Instant::now().into_std());
        held.truncate(MAX_HELD);
        let load = ToInit::Load {
            instances: state.balancer.loads(std::time::Instant::now()),
            held,
        };
        if let Err(mpsc::error::TrySendError::Closed(_)) = out.try_send(load) {
            return End::Exit(EXIT_CHANNEL);
        }
        // The access lines of the second, in frames well under the frame size.
        for _ in 0..ACCESS_FRAMES {
            let Some((lines, dropped)) = state.access.take(ACCESS_PER_FRAME) else {
                break;
            };
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                out.try_send(ToInit::Access { lines, dropped })
            {
                return End::Exit(EXIT_CHANNEL);
            }
        }
    }
}

/// Queues the request totals that changed since they were last sent, [`MAX_TALLIES`] a
/// report; a report that does not fit the queue is sent again at the next tick (the totals
/// are cumulative). `Err` when the channel is closed.
fn send_tallies(
    state: &State,
    out: &mpsc::Sender<ToInit>,
    sent: &mut BTreeMap<String, ServiceTally>,
) -> Result<(), ()> {
    let changed: Vec<ServiceTally> = state
        .tally
        .totals()
        .into_iter()
        .filter(|t| sent.get(&t.service) != Some(t))
        .collect();
    for chunk in changed.chunks(MAX_TALLIES) {
        match out.try_send(ToInit::Requests {
            services: chunk.to_vec(),
        }) {
            Ok(()) => sent.extend(chunk.iter().map(|t| (t.service.clone(), t.clone()))),
            Err(mpsc::error::TrySendError::Full(_)) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(()),
        }
    }
    Ok(())
}

/// Forwards the holds' wake-ups (already one per service a second at most).
async fn wake_loop(mut wakes: mpsc::Receiver<String>, out: mpsc::Sender<ToInit>) -> End {
    while let Some(service) = wakes.recv().await {
        if let Err(mpsc::error::TrySendError::Closed(_)) = out.try_send(ToInit::Wake { service }) {
            return End::Exit(EXIT_CHANNEL);
        }
    }
    End::Exit(EXIT_CHANNEL)
}

/// Closes idle upstream connections that have been idle too long.
async fn sweep_loop(state: Arc<State>) -> End {
    let mut tick = tokio::time::interval(SWEEP_PERIOD);
    loop {
        tick.tick().await;
        state.pool.sweep();
    }
}

/// Waits until no request is in flight to an instance, or `within` has passed.
async fn drain(state: &State, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while state.balancer.inflight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let left = state.balancer.inflight();
    if left > 0 {
        eprintln!("baton-front-door: drained with {left} requests still in flight");
    }
}
