//! The configuration of each process, written into the run's directory, and its start.
//!
//! The three proxies are set up alike: one worker (or thread), HTTP/1.1 keep-alive to the
//! upstream from a shared pool, keep-alive to clients with no per-connection request limit,
//! no access log, TLS session caches and tickets off (wrk would resume its previous session
//! otherwise, and `handshakes` would not measure full handshakes), the same certificate. Each adds or forwards what it does by default (the front door adds its
//! `X-Forwarded-*` and request-id headers; nginx and HAProxy add none here).

use std::path::Path;

use crate::procs::{write, Certs, Ports, Proc};
use crate::token::{self, Token};

/// The CPU of the upstream (and of wrk and the memory client).
pub const CLIENT_CPU: u32 = 0;
/// The CPU of the proxy under test.
pub const PROXY_CPU: u32 = 1;

/// The proxies, in the order of their ports.
pub const PROXIES: [&str; 3] = ["front door", "nginx", "haproxy"];

/// Requests a keep-alive connection may carry: far beyond one run, so no proxy closes early.
const KEEPALIVE_REQUESTS: u32 = 100_000_000;

/// nginx's `http` paths for its temporary files, all under `dir`.
fn nginx_temp_paths(dir: &Path, name: &str) -> String {
    let d = dir.display();
    ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("    {t}_temp_path {d}/{name}-{t};\n"))
        .collect()
}

/// nginx answering `200 ok` on `port`: the upstream every proxy sends to.
pub fn upstream(dir: &Path, port: u16) -> Result<Proc, String> {
    let d = dir.display();
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/upstream.pid;\nerror_log {d}/upstream.err warn;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n    access_log off;\n    keepalive_requests {KEEPALIVE_REQUESTS};\n    keepalive_timeout 300s;\n\
         {}    server {{\n        listen 127.0.0.1:{port} backlog=4096;\n        location / {{ return 200 \"ok\\n\"; }}\n    }}\n}}\n",
        nginx_temp_paths(dir, "upstream"),
    );
    let path = dir.join("upstream.conf");
    write(&path, &conf)?;
    let path = path.to_string_lossy().into_owned();
    let prefix = format!("{d}/");
    Proc::start(
        "upstream",
        CLIENT_CPU,
        "nginx",
        &["-p", &prefix, "-c", &path],
        &dir.join("upstream.log"),
        port,
    )
}

/// The front door (the host binary) with one worker thread.
pub fn front_door(
    dir: &Path,
    binary: &Path,
    ports: Ports,
    certs: &Certs,
    token: &Token,
) -> Result<Proc, String> {
    let config = serde_json::json!({
        "snapshot": {
            "settings": {
                "redirect_http": false,
                "https_port": 0,
                "idle_timeout_ms": 300_000,
                "max_connections": 16384,
                "per_client_connections": 16384,
                // Every request comes from 127.0.0.1: the per-client rate must not be what
                // is measured.
                "per_client_rate": 100_000_000,
                "per_client_burst": 100_000_000,
                "trusted_proxies": [],
            },
            "routes": [
                { "service": "up", "host": null, "path": "/", "auth": "none", "timeout_ms": 30_000 },
                {
                    "service": "up", "host": token::HOST, "path": "/", "auth": "oidc",
                    "timeout_ms": 30_000,
                },
            ],
            "services": { "up": { "hold": null } },
            "certs": [{ "hosts": [], "chain_pem": certs.chain_pem, "key_pem": certs.key_pem }],
            "oidc": {
                "issuer": token::ISSUER, "audience": token::AUDIENCE, "leeway_s": 30,
                "jwks": token.jwks,
            },
        },
        "instances": { "up": [{
            "id": "up1", "addr": "127.0.0.1", "port": ports.upstream, "board": "bench", "ready": true,
        }] },
    });
    let path = dir.join("front-door.json");
    write(&path, &config.to_string())?;
    let http = format!("127.0.0.1:{}", ports.http(0));
    let https = format!("127.0.0.1:{}", ports.https(0));
    let path = path.to_string_lossy().into_owned();
    let binary = binary.to_string_lossy().into_owned();
    let args = [
        "--config",
        &path,
        "--http",
        &http,
        "--https",
        &https,
        "--workers",
        "1",
    ];
    Proc::start(
        "front door",
        PROXY_CPU,
        &binary,
        &args,
        &dir.join("front-door.log"),
        ports.http(0),
    )
}

/// nginx as a reverse proxy, one worker process.
pub fn nginx(dir: &Path, ports: Ports, certs: &Certs) -> Result<Proc, String> {
    let d = dir.display();
    let conf = format!(
        "daemon off;\nworker_processes 1;\nworker_rlimit_nofile 20000;\npid {d}/nginx.pid;\nerror_log {d}/nginx.err warn;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n    access_log off;\n    keepalive_requests {KEEPALIVE_REQUESTS};\n    keepalive_timeout 300s;\n\
         {}    ssl_session_cache off;\n    ssl_session_tickets off;\n\
         upstream up {{\n        server 127.0.0.1:{up};\n        keepalive 512;\n        keepalive_requests {KEEPALIVE_REQUESTS};\n    }}\n\
         server {{\n        listen 127.0.0.1:{http} backlog=4096;\n        listen 127.0.0.1:{https} ssl backlog=4096;\n\
         ssl_certificate {chain};\n        ssl_certificate_key {key};\n\
         location / {{\n            proxy_pass http://up;\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n        }}\n    }}\n}}\n",
        nginx_temp_paths(dir, "nginx"),
        up = ports.upstream,
        http = ports.http(1),
        https = ports.https(1),
        chain = certs.chain.display(),
        key = certs.key.display(),
    );
    let path = dir.join("nginx.conf");
    write(&path, &conf)?;
    let path = path.to_string_lossy().into_owned();
    let prefix = format!("{d}/");
    Proc::start(
        "nginx",
        PROXY_CPU,
        "nginx",
        &["-p", &prefix, "-c", &path],
        &dir.join("nginx.log"),
        ports.http(1),
    )
}

/// HAProxy as a reverse proxy, one thread, in the foreground. Requests for [`token::HOST`]
/// pass only with a bearer token that `jwt_verify` accepts and whose `iss`, `aud` and `exp`
/// hold (HAProxy's documented JWT recipe; it has no key sets, so it gets the PEM key).
pub fn haproxy(dir: &Path, ports: Ports, certs: &Certs, token: &Token) -> Result<Proc, String> {
    let checks = format!(
        "    acl tok hdr(host) -i {host}\n\
         http-request set-var(txn.bearer) req.hdr(authorization),word(2,' ') if tok\n\
         http-request set-var(txn.now) date() if tok\n\
         http-request deny deny_status 401 if tok !{{ var(txn.bearer),jwt_header_query('$.alg') -m str ES256 }}\n\
         http-request deny deny_status 401 if tok !{{ var(txn.bearer),jwt_verify(\"ES256\",\"{pem}\") -m int 1 }}\n\
         http-request deny deny_status 401 if tok !{{ var(txn.bearer),jwt_payload_query('$.iss') -m str {iss} }}\n\
         http-request deny deny_status 401 if tok !{{ var(txn.bearer),jwt_payload_query('$.aud') -m str {aud} }}\n\
         http-request deny deny_status 401 if tok {{ var(txn.bearer),jwt_payload_query('$.exp','int'),sub(txn.now) -m int lt 0 }}\n",
        host = token::HOST,
        pem = token.public_pem.display(),
        iss = token::ISSUER,
        aud = token::AUDIENCE,
    );
    let conf = format!(
        "global\n    nbthread 1\n    maxconn 9000\n    tune.ssl.cachesize 0\n    ssl-default-bind-options no-tls-tickets\n\
         defaults\n    mode http\n    timeout connect 5s\n    timeout client 300s\n    timeout server 300s\n    timeout http-keep-alive 300s\n\
         frontend bench\n    bind 127.0.0.1:{http}\n    bind 127.0.0.1:{https} ssl crt {combined}\n    maxconn 9000\n{checks}    default_backend up\n\
         backend up\n    http-reuse always\n    server up1 127.0.0.1:{up}\n",
        http = ports.http(2),
        https = ports.https(2),
        combined = certs.combined.display(),
        up = ports.upstream,
    );
    let path = dir.join("haproxy.cfg");
    write(&path, &conf)?;
    let path = path.to_string_lossy().into_owned();
    Proc::start(
        "haproxy",
        PROXY_CPU,
        "haproxy",
        &["-db", "-f", &path],
        &dir.join("haproxy.log"),
        ports.http(2),
    )
}
