//! baton's service-network benchmark. Prints numbers; asserts nothing.
//!
//! ```sh
//! scripts/bench mesh     # or: cargo run --release -p baton-tests --bin bench_mesh
//! ```
//!
//! Two qemu-virt boards on one emulated segment under QEMU (TCG). Service `client` runs on
//! board 1 (`allow = ["server"]`), service `server` on board 2 (`publish = 8090`); both are the
//! example service. From inside the client container (`GET /load`, timed there, so the host's
//! port forwards are not in the numbers) it fetches `/bytes?n=SIZE` from the server K times,
//! one new connection after another, over two paths in the same run:
//!
//! - mesh: `http://server:8080/` — the service's virtual IP, DNATed to the instance on board 2,
//!   carried between the boards by WireGuard;
//! - plain: `http://<board 2's LAN address>:8090/` — the same segment unencrypted, through
//!   board 2's userspace publish proxy (one more hop than the mesh path has).
//!
//! It prints the throughput of both (MB/s, 10^6 bytes) and their ratio, twice, then the mean
//! time per request for 64-byte answers on both paths, twice. K for the throughput runs is
//! picked from a first request so that one mesh measurement takes about 20 s.
//!
//! The bench answers DHCP on the segment itself (see [`dhcp`]): with only link-local
//! addresses there, a board cannot masquerade its containers' traffic out of the segment
//! interface (the kernel's masquerade needs an address of global scope), so the plain path
//! would not exist.
//! Needs `scripts/build-example` first.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use baton::client::Client;
use baton_qemu::{Forward, Lab, LabConfig};
use baton_tests::{build_image_with, repo_root, API_PORT, READY, TOKEN};

const KEY: &str = "bench-mesh-key-0123456789abcdef0123456789abc";
/// The port both services listen on in their containers (and the VIP's port).
const SERVICE_PORT: u16 = 8080;
/// Where board 2 publishes the server (the plain path).
const SERVER_PUBLISH: u16 = 8090;
/// Where board 1 publishes the client, forwarded to the host to drive it.
const CLIENT_PUBLISH: u16 = 8091;
/// Bytes per request in the throughput runs.
const SIZE: u64 = 4 << 20;
/// Requests per latency run.
const LATENCY_K: u64 = 50;
/// Bytes per answer in the latency runs.
const LATENCY_SIZE: u64 = 64;
/// Wall time one mesh throughput measurement should take.
const TARGET: Duration = Duration::from_secs(20);
/// How long the boards and the services may take to come up.
const LIMIT: Duration = Duration::from_secs(600);

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_mesh: {e}");
        std::process::exit(1);
    }
}

/// A board's host name: derived from the MAC of its first NIC (`52:54:00:ba:00:NN`).
fn board_name(index: usize) -> String {
    format!("baton-ba00{index:02x}")
}

fn spec(name: &str, board: usize, publish: u16, allow: &[&str]) -> String {
    let allow: Vec<String> = allow.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "name = \"{name}\"\nimage = \"oci-archive:images/hello.tar\"\nport = {SERVICE_PORT}\npublish = {publish}\nscale = {{ min = 1 }}\nresources = {{ memory = \"32Mi\" }}\nplacement = {{ boards = [\"{}\"] }}\nallow = [{}]\n",
        board_name(board),
        allow.join(", ")
    )
}

fn run() -> Result<(), String> {
    let toml = format!(
        "[cluster]\nname = \"bench-mesh\"\nkey = \"{KEY}\"\n\n[api]\ntoken = \"{TOKEN}\"\n\n[time]\nservers = []\n"
    );
    let hello = baton_tests::example_archive();
    let image = build_image_with(
        "qemu-virt",
        &[
            ("cluster.toml", &toml),
            (
                "services/client.toml",
                &spec("client", 1, CLIENT_PUBLISH, &["server"]),
            ),
            (
                "services/server.toml",
                &spec("server", 2, SERVER_PUBLISH, &[]),
            ),
        ],
        &[("images/hello.tar", hello.as_path())],
    );
    let mut config = LabConfig::new(&image.path);
    config.boards = 2;
    config.cpus = 1;
    config.memory_mib = 384;
    let base = baton_qemu::free_ports(4).map_err(|e| e.to_string())?;
    config.forwards.push(Forward {
        host: base,
        guest: API_PORT,
    });
    config.forwards.push(Forward {
        host: base + 2,
        guest: CLIENT_PUBLISH,
    });
    let serial = repo_root().join("target/e2e-serial/bench-mesh");
    let _ = std::fs::remove_dir_all(&serial);
    config.serial_dir = Some(serial);
    let lab = Lab::start(config).map_err(|e| format!("starting QEMU: {e}"))?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| dhcp::serve(&lab, &stop));
        let result = measure(&lab);
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// The measurements, once both boards run.
fn measure(lab: &Lab) -> Result<(), String> {
    for i in 1..=2 {
        let board = lab.board(i).map_err(|e| e.to_string())?;
        board
            .wait_for_line(READY, Instant::now() + LIMIT)
            .map_err(|e| format!("board {i} did not get ready: {e}"))?;
    }
    let api = |i: usize| -> Result<Client, String> {
        let board = lab.board(i).map_err(|e| e.to_string())?;
        let port = board.forwarded(API_PORT).ok_or("no API forward")?;
        Ok(baton_tests::client(port, TOKEN))
    };
    let board2 = api(2)?;
    let client = lab
        .board(1)
        .map_err(|e| e.to_string())?
        .forwarded(CLIENT_PUBLISH)
        .ok_or("no forward to the client")?;

    let lan = wait("LAN address of board 2", || {
        lan_address(&board2, 2).ok_or_else(|| "not in its member list yet".to_string())
    })?;
    let paths = [
        ("mesh", format!("http://server:{SERVICE_PORT}")),
        ("plain", format!("http://{lan}:{SERVER_PUBLISH}")),
    ];
    for (name, url) in &paths {
        wait(&format!("the client to reach the server ({name})"), || {
            load(client, 1, &format!("{url}/bytes?n=1"))
        })?;
    }

    let first = load(client, 1, &format!("{}/bytes?n={SIZE}", paths[0].1))?;
    let k = ((TARGET.as_secs_f64() * 1000.0 / first.ms).ceil() as u64).clamp(2, 200);

    println!("== service-to-service networking: 2 qemu-virt boards under QEMU (TCG), 1 CPU and 384 MiB each");
    println!("   client on {}, server on {}; timed inside the client container (GET /load), one new TCP connection per request", board_name(1), board_name(2));
    println!(
        "   mesh:  {}/bytes  (service VIP -> DNAT -> WireGuard between the boards -> server)",
        paths[0].1
    );
    println!("   plain: {}/bytes  (board 2's LAN address, unencrypted; includes one userspace proxy hop on board 2, its publish proxy)", paths[1].1);
    println!(
        "throughput: SIZE = {SIZE} bytes ({} MiB) per request, K = {k} requests (MB = 10^6 bytes)",
        SIZE >> 20
    );
    println!(
        "{:>5} {:>12} {:>12} {:>12}",
        "run", "mesh MB/s", "plain MB/s", "mesh/plain"
    );
    for round in 1..=2 {
        let mesh = load(client, k, &format!("{}/bytes?n={SIZE}", paths[0].1))?;
        let plain = load(client, k, &format!("{}/bytes?n={SIZE}", paths[1].1))?;
        println!(
            "{round:>5} {:>12.2} {:>12.2} {:>12.2}   ({:.1} s and {:.1} s)",
            mesh.mb_per_s(),
            plain.mb_per_s(),
            mesh.mb_per_s() / plain.mb_per_s(),
            mesh.ms / 1000.0,
            plain.ms / 1000.0
        );
    }
    println!("latency: {LATENCY_SIZE}-byte answers, K = {LATENCY_K} requests, mean per request (connect + request + answer)");
    println!(
        "{:>5} {:>12} {:>12} {:>16}",
        "run", "mesh ms", "plain ms", "mesh - plain ms"
    );
    for round in 1..=2 {
        let mesh = load(
            client,
            LATENCY_K,
            &format!("{}/bytes?n={LATENCY_SIZE}", paths[0].1),
        )?;
        let plain = load(
            client,
            LATENCY_K,
            &format!("{}/bytes?n={LATENCY_SIZE}", paths[1].1),
        )?;
        println!(
            "{round:>5} {:>12.2} {:>12.2} {:>16.2}",
            mesh.ms_per_request(),
            plain.ms_per_request(),
            mesh.ms_per_request() - plain.ms_per_request()
        );
    }
    Ok(())
}

/// Board `index`'s own LAN (eth1) address, from its member list.
fn lan_address(api: &Client, index: usize) -> Option<String> {
    let (200, cluster) = api.request("GET", "/v1/cluster").ok()? else {
        return None;
    };
    let me = cluster["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == board_name(index).as_str())?;
    Some(me["addresses"].as_array()?.first()?.as_str()?.to_string())
}

/// What one `/load` call reported.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    requests: u64,
    bytes: u64,
    ms: f64,
}

impl Outcome {
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / (self.ms / 1000.0)
    }

    fn ms_per_request(&self) -> f64 {
        self.ms / self.requests as f64
    }

    /// Parses `requests=K bytes=B ms=T`.
    fn parse(line: &str) -> Option<Outcome> {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        };
        Some(Outcome {
            requests: field("requests")?.parse().ok()?,
            bytes: field("bytes")?.parse().ok()?,
            ms: field("ms")?.parse().ok()?,
        })
    }
}

/// Has the client container fetch `url` `k` times; what it measured, or why not.
fn load(client_port: u16, k: u64, url: &str) -> Result<Outcome, String> {
    let path = format!("/load?n={k}&url={url}");
    let (code, body) = get(client_port, &path, Duration::from_secs(300))?;
    if code != 200 {
        return Err(format!("GET {path} answered {code}: {}", body.trim()));
    }
    Outcome::parse(&body).ok_or_else(|| format!("GET {path}: unexpected answer {body:?}"))
}

/// One HTTP GET to 127.0.0.1:`port`: status code and body.
fn get(port: u16, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let fail = |e: std::io::Error| format!("GET {path} on 127.0.0.1:{port}: {e}");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(fail)?;
    s.set_read_timeout(Some(timeout)).map_err(fail)?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").map_err(fail)?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(fail)?;
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {path}: no status in {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((code, body.to_string()))
}

/// Polls `probe` every 500 ms until it gives a value, for at most [`LIMIT`]; the error names
/// the last reason it did not.
fn wait<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let last = match probe() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            return Err(format!("no {what} within {LIMIT:?}: {last}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A minimal DHCP server for the emulated segment, answering through the hub: every board gets
/// `192.168.77.(10 + last byte of its MAC)/24`, no router, a one-day lease.
mod dhcp {
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use baton_qemu::{packet, Lab};

    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
    const SERVER_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xff, 0x00, 0x01];
    const COOKIE: [u8; 4] = [99, 130, 83, 99];
    const DISCOVER: u8 = 1;
    const OFFER: u8 = 2;
    const REQUEST: u8 = 3;
    const ACK: u8 = 5;

    /// Answers DISCOVERs and REQUESTs on the segment until `stop` is set.
    pub fn serve(lab: &Lab, stop: &AtomicBool) {
        let mut next = 0;
        while !stop.load(Ordering::Relaxed) {
            for frame in lab.frames_since(next) {
                next = frame.seq + 1;
                let Some(d) = packet::udp_to(&frame.bytes, 67) else {
                    continue;
                };
                if let Some(reply) = answer(d.payload) {
                    let frame = packet::UdpDatagram {
                        src_mac: SERVER_MAC,
                        dst_mac: [0xff; 6],
                        src: SocketAddrV4::new(SERVER, 67),
                        dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, 68),
                        payload: &reply,
                    }
                    .to_frame();
                    if let Ok(frame) = frame {
                        if let Err(e) = lab.inject(&frame) {
                            eprintln!("bench_mesh: DHCP answer not sent: {e}");
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The BOOTP reply to a DHCP DISCOVER or REQUEST, or `None` for anything else.
    fn answer(request: &[u8]) -> Option<Vec<u8>> {
        if request.len() < 240 || request[0] != 1 || request[236..240] != COOKIE {
            return None;
        }
        let kind = option(&request[240..], 53)?.first().copied()?;
        let reply_kind = match kind {
            DISCOVER => OFFER,
            REQUEST => ACK,
            _ => return None,
        };
        let mac = &request[28..34];
        let yiaddr = Ipv4Addr::new(192, 168, 77, 10u8.wrapping_add(mac[5]));
        let mut out = vec![0u8; 236];
        out[0] = 2; // BOOTREPLY
        out[1] = 1; // Ethernet
        out[2] = 6; // hardware address length
        out[4..8].copy_from_slice(&request[4..8]); // xid
        out[10..12].copy_from_slice(&request[10..12]); // flags
        out[16..20].copy_from_slice(&yiaddr.octets());
        out[28..44].copy_from_slice(&request[28..44]); // chaddr
        out.extend_from_slice(&COOKIE);
        out.extend_from_slice(&[53, 1, reply_kind]);
        out.extend_from_slice(&[54, 4]);
        out.extend_from_slice(&SERVER.octets());
        out.extend_from_slice(&[51, 4]);
        out.extend_from_slice(&86_400u32.to_be_bytes());
        out.extend_from_slice(&[1, 4, 255, 255, 255, 0, 255]);
        Some(out)
    }

    /// The value of DHCP option `code` in `options`.
    fn option(mut options: &[u8], code: u8) -> Option<&[u8]> {
        loop {
            match *options.first()? {
                255 => return None,
                0 => options = &options[1..],
                c => {
                    let len = usize::from(*options.get(1)?);
                    let value = options.get(2..2 + len)?;
                    if c == code {
                        return Some(value);
                    }
                    options = &options[2 + len..];
                }
            }
        }
    }
}
