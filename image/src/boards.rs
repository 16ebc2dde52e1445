//! `baton boards`: finds boards on the LAN by mDNS from the user's machine, and the tables the
//! board commands print about a cluster ([`members`]).
//!
//! Boards advertise `_baton._tcp.local` (see `baton_cluster::discovery`); this browses for that
//! type on every IPv4 interface for a while and lists what answered, with where its API and its
//! gossip listen.

pub mod members;
pub mod table;

use std::net::Ipv4Addr;
use std::time::Duration;

use baton_cluster::discovery::{Discovery, DiscoveryError, Interfaces, Peer};
use serde::Serialize;

/// Errors of `baton boards`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// mDNS could not start or browse on this machine.
    #[error("finding boards on the LAN: {0}")]
    Discovery(#[from] DiscoveryError),
    /// The timeout is not a positive number of seconds.
    #[error("--timeout {0}: not a positive number of seconds")]
    Timeout(f64),
    /// The JSON could not be written.
    #[error("formatting the boards as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A board found on the LAN, as `baton boards --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Board {
    /// Its host name.
    pub board: String,
    /// Its cluster name; empty when it did not advertise one.
    pub cluster: String,
    /// Its IPv4 addresses, sorted.
    pub addresses: Vec<Ipv4Addr>,
    /// Its API's URL (first address and the advertised port), if it has an address.
    pub api: Option<String>,
    /// The API's TCP port.
    pub api_port: u16,
    /// The membership gossip's UDP port, if advertised.
    pub gossip_port: Option<u16>,
}

impl From<Peer> for Board {
    fn from(peer: Peer) -> Board {
        Board {
            api: peer
                .addresses
                .first()
                .map(|a| format!("https://{a}:{}", peer.api_port)),
            board: peer.board,
            cluster: peer.cluster,
            addresses: peer.addresses,
            api_port: peer.api_port,
            gossip_port: peer.gossip_port,
        }
    }
}

/// Browses the LAN for `window` and returns every board that answered, sorted by name; with
/// `cluster`, only that cluster's boards.
pub fn discover(window: Duration, cluster: Option<&str>) -> Result<Vec<Board>, Error> {
    let discovery = Discovery::start(&Interfaces::All)?;
    let peers = discovery.browse().map(|browser| browser.collect(window));
    discovery.shutdown();
    Ok(peers?
        .into_iter()
        .filter(|p| cluster.is_none_or(|c| p.cluster == c))
        .map(Board::from)
        .collect())
}

/// The boards as a table: BOARD, CLUSTER, ADDRESS, API, GOSSIP.
pub fn render(boards: &[Board]) -> String {
    let dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
    let rows: Vec<Vec<String>> = boards
        .iter()
        .map(|b| {
            let addresses: Vec<String> = b.addresses.iter().map(|a| a.to_string()).collect();
            vec![
                b.board.clone(),
                dash(b.cluster.clone()),
                dash(addresses.join(",")),
                b.api.clone().unwrap_or_else(|| "-".into()),
                b.gossip_port.map_or("-".into(), |p| p.to_string()),
            ]
        })
        .collect();
    table::render(&["BOARD", "CLUSTER", "ADDRESS", "API", "GOSSIP"], &rows)
}

/// What `baton boards` prints when nothing answered.
pub fn none_found(timeout: f64, cluster: Option<&str>) -> String {
    let which = cluster.map_or(String::new(), |c| format!(" of cluster {c:?}"));
    format!(
        "no boards{which} found within {timeout} s (mDNS, UDP 5353: is this machine on the boards' LAN?)"
    )
}

/// `baton boards [--timeout SECS] [--json] [--cluster NAME]`.
pub fn run_cli(timeout: f64, json: bool, cluster: Option<&str>) -> Result<(), Error> {
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(Error::Timeout(timeout));
    }
    let boards = discover(Duration::from_secs_f64(timeout), cluster)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&boards)?);
    } else if boards.is_empty() {
        println!("{}", none_found(timeout, cluster));
    } else {
        print!("{}", render(&boards));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(board: &str, addresses: &[[u8; 4]], gossip: Option<u16>) -> Peer {
        Peer {
            board: board.into(),
            cluster: "home".into(),
            addresses: addresses.iter().map(|a| Ipv4Addr::from(*a)).collect(),
            api_port: 7070,
            gossip_port: gossip,
        }
    }

    #[test]
    fn boards_show_their_api_url_and_gossip_port() {
        let boards: Vec<Board> = vec![
            peer("pi-a", &[[169, 254, 3, 1], [192, 168, 1, 10]], Some(7946)).into(),
            Board {
                cluster: String::new(),
                ..peer("pi-bb", &[], None).into()
            },
        ];
        assert_eq!(boards[0].api.as_deref(), Some("https://169.254.3.1:7070"));
        let expected = [
            "BOARD  CLUSTER  ADDRESS                   API                       GOSSIP",
            "pi-a   home     169.254.3.1,192.168.1.10  https://169.254.3.1:7070  7946",
            "pi-bb  -        -                         -                         -",
            "",
        ];
        assert_eq!(render(&boards), expected.join("\n"));
    }

    #[test]
    fn json_names_every_field() {
        let board: Board = peer("pi-a", &[[169, 254, 3, 1]], Some(7946)).into();
        assert_eq!(
            serde_json::to_value(&board).expect("json"),
            serde_json::json!({
                "board": "pi-a", "cluster": "home", "addresses": ["169.254.3.1"],
                "api": "https://169.254.3.1:7070", "api_port": 7070, "gossip_port": 7946
            })
        );
    }

    #[test]
    fn nothing_found_says_where_to_look() {
        assert_eq!(
            none_found(3.0, None),
            "no boards found within 3 s (mDNS, UDP 5353: is this machine on the boards' LAN?)"
        );
        assert!(none_found(0.5, Some("home"))
            .starts_with("no boards of cluster \"home\" found within 0.5 s"));
    }

    #[test]
    fn a_timeout_must_be_positive() {
        assert!(matches!(run_cli(0.0, false, None), Err(Error::Timeout(_))));
        assert!(matches!(
            run_cli(f64::NAN, true, None),
            Err(Error::Timeout(_))
        ));
    }
}
