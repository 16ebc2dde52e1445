//! TCP port forwards from the host's loopback to the boards, and finding free ports for tests.
//!
//! `--forward H:G` forwards `127.0.0.1:H` to board 1's port G, `127.0.0.1:H+1` to board 2's
//! port G, and so on: board `i` (1-based) gets host port `H + i - 1`.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::str::FromStr;

/// What went wrong planning or checking ports.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A forward is not written `HOST:GUEST` with ports 1-65535.
    #[error("port forward {text:?} is not HOST:GUEST with ports between 1 and 65535")]
    BadForward {
        /// The text given.
        text: String,
    },
    /// `H + i - 1` does not fit in a port number.
    #[error("port forward {host}:{guest} for board {board} needs host port {} which is above 65535", u32::from(*host) + *board as u32 - 1)]
    Overflow {
        /// Host port of the forward.
        host: u16,
        /// Guest port of the forward.
        guest: u16,
        /// Board number (1-based).
        board: usize,
    },
    /// Two forwards map the same host port.
    #[error("host port {port} is forwarded twice (to board {first} and board {second}); spread the --forward host ports further apart")]
    Conflict {
        /// The host port.
        port: u16,
        /// First board it goes to.
        first: usize,
        /// Second board it goes to.
        second: usize,
    },
    /// A host port cannot be bound on 127.0.0.1.
    #[error("host port 127.0.0.1:{port} for board {board} is in use: {source}")]
    InUse {
        /// The host port.
        port: u16,
        /// Board it was meant for.
        board: usize,
        /// Error from bind.
        source: io::Error,
    },
    /// A guest forward is not written `GUEST_IP:PORT=HOST_PORT` with a free address of QEMU's
    /// user network.
    #[error("guest forward {text:?} is not GUEST_IP:PORT=HOST_PORT with GUEST_IP in 10.0.2.4-10.0.2.14 or 10.0.2.16-10.0.2.254 (QEMU's user network, away from its gateway, DNS and the board) and ports between 1 and 65535")]
    BadGuestForward {
        /// The text given.
        text: String,
    },
    /// Two guest forwards use the same guest port, which QEMU cannot tell apart.
    #[error("guest forwards {first} and {second} use the same guest port; QEMU needs a different port for each")]
    GuestPortTwice {
        /// The first forward's guest address.
        first: std::net::SocketAddrV4,
        /// The second one.
        second: std::net::SocketAddrV4,
    },
    /// No free port could be found on 127.0.0.1.
    #[error("cannot find {count} free consecutive TCP port(s) on 127.0.0.1: {source}")]
    NoFreePort {
        /// How many consecutive ports were wanted.
        count: usize,
        /// Last error seen.
        source: io::Error,
    },
}

/// One port forward: host port on 127.0.0.1 to guest port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Forward {
    /// Port on the host's 127.0.0.1.
    pub host: u16,
    /// TCP port in the guest.
    pub guest: u16,
}

impl FromStr for Forward {
    type Err = PortError;

    /// Parses `HOST:GUEST`, for example `8080:80`.
    fn from_str(text: &str) -> Result<Self, PortError> {
        let bad = || PortError::BadForward {
            text: text.to_string(),
        };
        let (h, g) = text.split_once(':').ok_or_else(bad)?;
        let host: u16 = h.trim().parse().map_err(|_| bad())?;
        let guest: u16 = g.trim().parse().map_err(|_| bad())?;
        if host == 0 || guest == 0 {
            return Err(bad());
        }
        Ok(Forward { host, guest })
    }
}

/// A forward in the other direction: the boards' connections to `guest` (an address of QEMU's
/// user network that no board has) reach `127.0.0.1:host` on the host. Every board gets the same
/// ones. This is how a board reaches a registry or other test server on the host while the user
/// network stays `restrict=on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GuestForward {
    /// Address and port the boards connect to.
    pub guest: std::net::SocketAddrV4,
    /// Port on the host's 127.0.0.1.
    pub host: u16,
}

impl FromStr for GuestForward {
    type Err = PortError;

    /// Parses `GUEST_IP:PORT=HOST_PORT`, for example `10.0.2.100:5000=5000`.
    fn from_str(text: &str) -> Result<Self, PortError> {
        let bad = || PortError::BadGuestForward {
            text: text.to_string(),
        };
        let (g, h) = text.split_once('=').ok_or_else(bad)?;
        let guest: std::net::SocketAddrV4 = g.trim().parse().map_err(|_| bad())?;
        let host: u16 = h.trim().parse().map_err(|_| bad())?;
        let [a, b, c, d] = guest.ip().octets();
        // 10.0.2.2 is QEMU's gateway, .3 its DNS server, .15 the board itself.
        let free = (a, b, c) == (10, 0, 2) && matches!(d, 4..=14 | 16..=254);
        if !free || host == 0 || guest.port() == 0 {
            return Err(bad());
        }
        Ok(GuestForward { guest, host })
    }
}

/// Checks that no two guest forwards share a guest port (QEMU names each forward's device after
/// its port and refuses a second one).
pub fn check_guest_forwards(forwards: &[GuestForward]) -> Result<(), PortError> {
    for (i, a) in forwards.iter().enumerate() {
        if let Some(b) = forwards[i + 1..]
            .iter()
            .find(|b| b.guest.port() == a.guest.port())
        {
            return Err(PortError::GuestPortTwice {
                first: a.guest,
                second: b.guest,
            });
        }
    }
    Ok(())
}

/// The forwards of every board: element `i - 1` holds board `i`'s forwards, host ports shifted
/// by `i - 1`. Fails if a host port overflows or two forwards land on the same host port.
pub fn plan(forwards: &[Forward], boards: usize) -> Result<Vec<Vec<Forward>>, PortError> {
    let mut used: std::collections::HashMap<u16, usize> = std::collections::HashMap::new();
    let mut plan = Vec::with_capacity(boards);
    for board in 1..=boards {
        let mut mine = Vec::with_capacity(forwards.len());
        for f in forwards {
            let shifted = u32::from(f.host) + board as u32 - 1;
            let host = u16::try_from(shifted).map_err(|_| PortError::Overflow {
                host: f.host,
                guest: f.guest,
                board,
            })?;
            if let Some(&first) = used.get(&host) {
                return Err(PortError::Conflict {
                    port: host,
                    first,
                    second: board,
                });
            }
            used.insert(host, board);
            mine.push(Forward {
                host,
                guest: f.guest,
            });
        }
        plan.push(mine);
    }
    Ok(plan)
}

/// Checks that `port` can be bound on 127.0.0.1 right now (QEMU binds it a moment later).
pub fn check_free(port: u16, board: usize) -> Result<(), PortError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .map(drop)
        .map_err(|source| PortError::InUse {
            port,
            board,
            source,
        })
}

/// A TCP port on 127.0.0.1 that is free right now (the kernel picks it). For tests: another
/// process may take it before you use it, so use it promptly.
pub fn free_port() -> Result<u16, PortError> {
    free_ports(1)
}

/// The first of `count` consecutive TCP ports on 127.0.0.1 that are all free right now; for
/// `--forward` with several boards.
pub fn free_ports(count: usize) -> Result<u16, PortError> {
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no candidate worked");
    for _ in 0..64 {
        let base = match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
            Ok(addr) => addr.port(),
            Err(e) => {
                last = e;
                continue;
            }
        };
        if usize::from(base) + count > 65536 {
            continue;
        }
        // Hold every port of the range at once so the check is about all of them together.
        let held: Result<Vec<TcpListener>, io::Error> = (0..count)
            .map(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, base + i as u16)))
            .collect();
        match held {
            Ok(_) => return Ok(base),
            Err(e) => last = e,
        }
    }
    Err(PortError::NoFreePort {
        count,
        source: last,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_guest_forwards_on_one_port_are_refused() {
        let a: GuestForward = "10.0.2.100:5000=41000".parse().unwrap();
        let b: GuestForward = "10.0.2.101:5000=41001".parse().unwrap();
        let c: GuestForward = "10.0.2.101:5001=41001".parse().unwrap();
        assert!(check_guest_forwards(&[a, c]).is_ok());
        let err = check_guest_forwards(&[a, c, b]).unwrap_err().to_string();
        assert!(err.contains("10.0.2.100:5000 and 10.0.2.101:5000"), "{err}");
    }

    #[test]
    fn guest_forwards_parse_and_keep_away_from_qemus_addresses() {
        let f: GuestForward = "10.0.2.100:5000=41000".parse().unwrap();
        assert_eq!(f.guest.to_string(), "10.0.2.100:5000");
        assert_eq!(f.host, 41000);
        for bad in [
            "10.0.2.2:5000=1",
            "10.0.2.3:53=1",
            "10.0.2.15:80=1",
            "10.0.3.100:80=1",
            "192.168.1.1:80=1",
            "10.0.2.100:5000",
            "10.0.2.100:0=5",
            "10.0.2.100:5000=0",
            "10.0.2.100=5000",
        ] {
            let err = bad.parse::<GuestForward>().unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    use super::*;

    #[test]
    fn parses_host_guest() {
        assert_eq!(
            "8080:80".parse::<Forward>().unwrap(),
            Forward {
                host: 8080,
                guest: 80
            }
        );
        for bad in ["8080", "0:80", "8080:0", "a:80", "70000:80", "8080:80:1"] {
            let err = bad.parse::<Forward>().unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn shifts_host_ports_per_board() {
        let fwd = [
            Forward {
                host: 8080,
                guest: 80,
            },
            Forward {
                host: 2200,
                guest: 22,
            },
        ];
        let plan = plan(&fwd, 3).unwrap();
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[0], fwd.to_vec());
        assert_eq!(
            plan[2],
            vec![
                Forward {
                    host: 8082,
                    guest: 80
                },
                Forward {
                    host: 2202,
                    guest: 22
                }
            ]
        );
    }

    #[test]
    fn rejects_overlapping_and_overflowing_ports() {
        let fwd = [
            Forward {
                host: 8080,
                guest: 80,
            },
            Forward {
                host: 8081,
                guest: 22,
            },
        ];
        let err = plan(&fwd, 2).unwrap_err();
        assert!(
            matches!(
                err,
                PortError::Conflict {
                    port: 8081,
                    first: 1,
                    second: 2
                }
            ),
            "{err}"
        );
        let err = plan(
            &[Forward {
                host: 65535,
                guest: 80,
            }],
            2,
        )
        .unwrap_err();
        assert!(matches!(err, PortError::Overflow { board: 2, .. }), "{err}");
        assert!(err.to_string().contains("65536"), "{err}");
    }

    #[test]
    fn finds_consecutive_free_ports_and_detects_busy_ones() {
        let base = free_ports(3).unwrap();
        for i in 0..3 {
            check_free(base + i, 1).unwrap();
        }
        let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = busy.local_addr().unwrap().port();
        let err = check_free(port, 2).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("127.0.0.1:{port} for board 2 is in use")),
            "{err}"
        );
    }
}
