//! `GET /v1/services/{name}/logs?cluster=1`: the lines of the service's instances on every
//! board, this one's and its peers' (read through [`super::fanout`]), each prefixed with its
//! instance and board (`web-2@pi-b out ...`). The past is merged by time; what comes live is
//! passed on as it comes. A peer's lines are hostile text: they are cut to the supervisor's
//! line length and cannot start a line of their own.

use std::sync::Arc;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use futures_util::StreamExt as _;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use super::events::PAST_WAIT;
use super::fanout::{Ask, Fanout, Got};
use crate::api::events::KEEP_ALIVE;
use crate::cluster::peer_read::Peers;
use crate::containers::supervisor::logs::{LogLine, ServiceLog, Stream, MAX_LINE};

/// The longest instance name taken from a peer.
const MAX_INSTANCE: usize = 80;
/// The most past lines merged from every board (each line up to 8 KiB: what is held while
/// the boards' pasts come in stays bounded).
pub const MAX_TAIL: usize = 500;

/// The lines of `service` on every board: the past `tail`, then (when `follow`) each new one.
pub fn answer(
    node: Arc<dyn Peers>,
    board: String,
    service: &str,
    log: Option<Arc<ServiceLog>>,
    tail: usize,
    follow: bool,
) -> Response {
    let tail = tail.min(MAX_TAIL);
    let rx = log.as_ref().map(|l| l.subscribe());
    let past = log.as_ref().map(|l| l.tail(tail)).unwrap_or_default();
    // The path is the service name as the router matched it; it is put back escaped.
    let name = escape(service);
    let mut fan: Fanout<LogLine> = Fanout::start(
        node,
        Ask {
            first: format!(
                "/v1/peer/logs/{name}?tail={tail}&follow={}",
                u8::from(follow)
            ),
            again: format!("/v1/peer/logs/{name}?tail=0&follow=1"),
            last_event_id: None,
            follow,
        },
    );
    let head = async move {
        let (got, late) = fan
            .past(Instant::now() + PAST_WAIT, (tail, tail), |l| l.time_ms)
            .await;
        let mut merged: Vec<(u64, String)> =
            past.iter().map(|l| (l.time_ms, text(l, &board))).collect();
        merged.extend(
            got.into_iter()
                .filter_map(|(peer, g)| from_peer(&peer, g).map(|t| (t.0.unwrap_or(0), t.1))),
        );
        merged.sort_by_key(|(at, _)| *at);
        let skip = merged.len().saturating_sub(tail);
        let mut out: String = merged.into_iter().skip(skip).map(|(_, t)| t).collect();
        for peer in late {
            out.push_str(&format!(
                "baton: {peer} cannot be read: no answer in time\n"
            ));
        }
        (out, (rx, fan, board))
    };
    let body = futures_util::stream::once(head).flat_map(move |(text, state)| {
        let rest = if follow {
            Either::Left(futures_util::stream::unfold(state, live))
        } else {
            Either::Right(futures_util::stream::empty())
        };
        futures_util::stream::once(async move { text }).chain(rest)
    });
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(body.map(Ok::<_, std::convert::Infallible>)),
    )
        .into_response()
}

type Live = (
    Option<broadcast::Receiver<LogLine>>,
    Fanout<LogLine>,
    String,
);

/// The next text of the live part: a line of this board, of a peer, or a blank line after
/// [`KEEP_ALIVE`] of silence.
async fn live((mut rx, mut fan, board): Live) -> Option<(String, Live)> {
    let deadline = Instant::now() + KEEP_ALIVE;
    loop {
        let local = async {
            match rx.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let text = tokio::select! {
            got = local => match got {
                Ok(line) => text(&line, &board),
                Err(RecvError::Lagged(n)) => format!("baton: {n} lines of {board} skipped (reader too slow)\n"),
                Err(RecvError::Closed) => {
                    rx = None;
                    continue;
                }
            },
            Some((peer, got)) = fan.recv() => match from_peer(&peer, got) {
                Some((_, text)) => text,
                None => continue,
            },
            // A blank line (the CLI and the dashboard show none): a write that fails once the
            // reader has gone, which ends the stream and the peers' connections with it.
            () = tokio::time::sleep_until(deadline) => "\n".to_string(),
        };
        return Some((text, (rx, fan, board)));
    }
}

/// What a peer sent, as a text line (and the line's time), or `None`.
fn from_peer(peer: &str, got: Got<LogLine>) -> Option<(Option<u64>, String)> {
    match got {
        Got::Item { v: mut line, .. } => {
            line.instance = clean(&line.instance, MAX_INSTANCE);
            line.text = clean(&line.text, MAX_LINE);
            Some((Some(line.time_ms), text(&line, peer)))
        }
        Got::Skipped(n) => Some((
            None,
            format!("baton: {n} lines of {peer} skipped (reader too slow)\n"),
        )),
        Got::Unreachable(e) => Some((None, format!("baton: {peer} cannot be read: {e}\n"))),
        Got::PastEnd => None,
    }
}

/// `text` cut to `max` bytes, with line breaks shown rather than taken.
fn clean(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    baton_api::events::cut(&mut out, max);
    out
}

/// One line as the answer shows it.
fn text(line: &LogLine, board: &str) -> String {
    let stream = match line.stream {
        Stream::Stdout => "out",
        Stream::Stderr => "err",
        Stream::Access => "acc",
    };
    let more = if line.continued { " \\" } else { "" };
    format!("{}@{board} {stream} {}{more}\n", line.instance, line.text)
}

/// `name` escaped for a URL path segment (a service name is `[a-z0-9-]`; anything else is
/// escaped rather than trusted).
fn escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_line_cannot_start_a_line_of_its_own_and_is_cut() {
        let line = LogLine {
            time_ms: 7,
            instance: "web-1\nfake-1@pi-a out".to_string(),
            stream: Stream::Stdout,
            text: format!("hello\r\nbaton: forged{}", "x".repeat(MAX_LINE)),
            continued: false,
        };
        let (at, shown) = from_peer("pi-b", Got::Item { id: None, v: line }).expect("a line");
        assert_eq!(at, Some(7));
        assert_eq!(shown.matches('\n').count(), 1, "{shown:.100}");
        assert!(shown.starts_with("web-1\u{fffd}fake-1@pi-a out@pi-b out hello"));
        assert!(shown.len() <= MAX_LINE + MAX_INSTANCE + 20);
    }

    #[test]
    fn a_name_is_escaped_for_the_path() {
        assert_eq!(escape("web-1"), "web-1");
        assert_eq!(escape("a/b?c"), "a%2Fb%3Fc");
    }
}
