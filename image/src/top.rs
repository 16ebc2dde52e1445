//! `baton top`: the cluster live in the terminal. Every [`PERIOD`] it asks each board for its
//! status and its services (the board named with `--board` for the members, then every alive
//! member at the API address it announces, all at once), and redraws two tables: the boards
//! (CPU, memory, data partition, version) and the instances (state, restarts, CPU, memory).
//! CPU shares come from two readings, so the first frame shows them once the second reading
//! is in.
//!
//! On a terminal it draws on the alternate screen and gives the screen back as it found it on
//! Ctrl-C; otherwise it prints one frame (from two readings [`PERIOD`] apart) and ends. Names
//! come from boards and are escaped before they reach the terminal.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_api::{ClusterView, MemberStatus, ServiceInstance, ServiceList, StatusReport};

use crate::client::Client;
use crate::events_cli::printable;

/// How often the view is read again.
pub const PERIOD: Duration = Duration::from_secs(2);
/// Boards shown and asked at most.
pub const MAX_BOARDS: usize = 64;

/// One board's answers at one time.
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// Its name.
    pub name: String,
    /// `self`, `alive`, `dead`.
    pub state: String,
    /// Its status, unless it could not be asked.
    pub status: Option<StatusReport>,
    /// Its services (its own instances carry their use).
    pub services: Option<ServiceList>,
    /// Why it could not be asked.
    pub error: Option<String>,
}

/// Every board at one time.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// When it was read.
    pub at: Option<Instant>,
    /// The boards, the one asked first.
    pub boards: Vec<Board>,
}

/// Runs `baton top` against the board `client` talks to; `client_for` makes a client for
/// another board's API URL (same token and CA).
pub fn run(
    client: &Client,
    client_for: impl Fn(&str) -> anyhow::Result<Client> + Sync,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    if !out.is_terminal() {
        let first = read(client, &client_for);
        std::thread::sleep(PERIOD);
        let second = read(client, &client_for);
        write!(out, "{}", render(&first, &second))?;
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    // The alternate screen, without a cursor; both given back when the guard goes, however
    // the loop ends (an error, a panic).
    write!(out, "\x1b[?1049h\x1b[?25l")?;
    out.flush()?;
    let _screen = Screen;
    show(&mut out, client, &client_for, &stop)
}

/// Gives the terminal back as it was (the main screen, the cursor) when dropped.
struct Screen;

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let _ = write!(out, "\x1b[?25h\x1b[?1049l");
        let _ = out.flush();
    }
}

fn show(
    out: &mut std::io::Stdout,
    client: &Client,
    client_for: &(impl Fn(&str) -> anyhow::Result<Client> + Sync),
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut before = Reading::default();
    while !stop.load(Ordering::Relaxed) {
        let now = read(client, client_for);
        write!(
            out,
            "\x1b[H\x1b[2J{}",
            render(&before, &now).replace('\n', "\r\n")
        )?;
        out.flush()?;
        before = now;
        let until = Instant::now() + PERIOD;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Reads every board once: the members from `client`'s board, then each alive one's status
/// and services at once.
pub fn read(
    client: &Client,
    client_for: &(impl Fn(&str) -> anyhow::Result<Client> + Sync),
) -> Reading {
    let at = Some(Instant::now());
    let members: Vec<(String, String, Option<String>)> =
        match client.get::<ClusterView>("/v1/cluster") {
            Ok(view) => view
                .members
                .into_iter()
                .map(|m| {
                    let state = match m.state {
                        MemberStatus::Myself => "self",
                        MemberStatus::Alive => "alive",
                        MemberStatus::Dead => "dead",
                        MemberStatus::Unknown => "?",
                    };
                    (m.name, state.to_string(), m.api)
                })
                .collect(),
            // A board alone has no cluster view: it is the only board.
            Err(_) => vec![(String::new(), "self".to_string(), None)],
        };
    let boards = std::thread::scope(|scope| {
        let asks: Vec<_> = members
            .into_iter()
            .take(MAX_BOARDS)
            .map(|(name, state, api)| {
                scope.spawn(move || {
                    let mut board = Board {
                        name,
                        state: state.clone(),
                        ..Board::default()
                    };
                    let asked = match (state.as_str(), &api) {
                        ("self", _) => Some(Ok(client.clone())),
                        ("alive", Some(url)) => Some(client_for(url)),
                        _ => None,
                    };
                    match asked {
                        Some(Ok(c)) => ask(&c, &mut board),
                        Some(Err(e)) => board.error = Some(e.to_string()),
                        None => {}
                    }
                    board
                })
            })
            .collect();
        asks.into_iter()
            .map(|a| a.join().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    Reading { at, boards }
}

fn ask(client: &Client, board: &mut Board) {
    match client.get::<StatusReport>("/v1/status") {
        Ok(status) => {
            if board.name.is_empty() {
                board.name = status.hostname.clone();
            }
            board.status = Some(status);
        }
        Err(e) => board.error = Some(e.to_string()),
    }
    board.services = client.get::<ServiceList>("/v1/services").ok();
}

/// Both tables, with CPU shares from `before` to `now` where both have the figures.
pub fn render(before: &Reading, now: &Reading) -> String {
    let seconds = match (before.at, now.at) {
        (Some(a), Some(b)) if b > a => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let mut out = format!(
        "baton top: {} boards, every {} s (Ctrl-C to quit)\n\n",
        now.boards.len(),
        PERIOD.as_secs()
    );
    out.push_str(&format!(
        "{:<20} {:<6} {:>5} {:>17} {:>17} {}\n",
        "BOARD", "STATE", "CPU", "MEMORY", "DATA", "VERSION"
    ));
    for board in &now.boards {
        let was = before.boards.iter().find(|b| b.name == board.name);
        out.push_str(&board_line(board, was));
    }
    out.push_str(&format!(
        "\n{:<16} {:<12} {:<20} {:<10} {:>5} {:>8} {:>5} {:>9}\n",
        "SERVICE", "INSTANCE", "BOARD", "STATE", "READY", "RESTARTS", "CPU", "MEMORY"
    ));
    let was_used = usage(before);
    for (key, line) in instances(now) {
        let cpu = match (was_used.get(&key), line.cpu_ms) {
            (Some(Some(a)), Some(b)) if seconds > 0.0 && b >= *a => {
                format!("{:.0}%", (b - a) as f64 / 10.0 / seconds)
            }
            _ => "-".to_string(),
        };
        out.push_str(&format!(
            "{:<16} {:<12} {:<20} {:<10} {:>5} {:>8} {:>5} {:>9}\n",
            printable(&key.0),
            printable(&key.1),
            printable(&line.board),
            line.state,
            if line.ready { "yes" } else { "no" },
            line.restarts.map_or("-".to_string(), |r| r.to_string()),
            cpu,
            line.memory.map_or("-".to_string(), size),
        ));
    }
    out
}

fn board_line(board: &Board, was: Option<&Board>) -> String {
    let load = board.status.as_ref().and_then(|s| s.load.as_ref());
    let cpu = match (load, was.and_then(|b| b.status.as_ref()?.load.as_ref())) {
        (Some(b), Some(a)) if b.cpu_total_ms > a.cpu_total_ms && b.cpu_busy_ms >= a.cpu_busy_ms => {
            let share =
                (b.cpu_busy_ms - a.cpu_busy_ms) as f64 / (b.cpu_total_ms - a.cpu_total_ms) as f64;
            format!("{:.0}%", share * 100.0)
        }
        _ => "-".to_string(),
    };
    let memory = load.map_or("-".to_string(), |l| {
        let used = l
            .memory_total_bytes
            .saturating_sub(l.memory_available_bytes);
        format!("{}/{}", size(used), size(l.memory_total_bytes))
    });
    let data = match load.map(|l| (l.data_used_bytes, l.data_free_bytes)) {
        Some((Some(used), Some(free))) => {
            format!("{}/{}", size(used), size(used.saturating_add(free)))
        }
        _ => "-".to_string(),
    };
    let version = match (&board.status, &board.error) {
        (Some(s), _) => printable(&s.version),
        (None, Some(e)) => format!("unreachable: {}", printable(e)),
        (None, None) => String::new(),
    };
    format!(
        "{:<20} {:<6} {:>5} {:>17} {:>17} {}\n",
        printable(&board.name),
        board.state,
        cpu,
        memory,
        data,
        version
    )
}

/// One instance as the table shows it.
struct Line {
    board: String,
    state: &'static str,
    ready: bool,
    restarts: Option<u32>,
    cpu_ms: Option<u64>,
    memory: Option<u64>,
}

/// Every board's own instances (they carry their figures), by (service, instance).
fn instances(reading: &Reading) -> BTreeMap<(String, String), Line> {
    let mut all = BTreeMap::new();
    for board in &reading.boards {
        let Some(list) = &board.services else {
            continue;
        };
        for service in &list.services {
            for instance in &service.instances {
                let ServiceInstance::Local(local) = instance else {
                    continue;
                };
                let i = &local.instance;
                all.insert(
                    (service.name.clone(), i.id.clone()),
                    Line {
                        board: board.name.clone(),
                        state: i.state.as_str(),
                        ready: i.ready,
                        restarts: Some(i.restarts),
                        cpu_ms: i.usage.map(|u| u.cpu_ms),
                        memory: i.usage.map(|u| u.memory_bytes),
                    },
                );
            }
        }
    }
    all
}

fn usage(reading: &Reading) -> BTreeMap<(String, String), Option<u64>> {
    instances(reading)
        .into_iter()
        .map(|(k, l)| (k, l.cpu_ms))
        .collect()
}

/// `bytes` in the largest unit that keeps a whole number in front (`312 KiB`, `45 MiB`,
/// `1.5 GiB`).
fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

#[cfg(test)]
#[path = "top_tests.rs"]
mod tests;
