//! A tiny registry for tests, served on 127.0.0.1 by a thread: manifests and blobs from maps, with
//! optional basic or bearer authentication, and a log of the requests it saw.

use crate::digest::Digest;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// How the fake registry wants clients to authenticate.
#[derive(Clone)]
pub(crate) enum FakeAuth {
    None,
    /// `Authorization: Basic …` must be exactly this.
    Basic(String),
    /// A bearer token from `/token`, which wants this `Authorization` header (if any).
    Bearer {
        token: String,
        basic: Option<String>,
    },
}

/// The registry's content.
#[derive(Clone)]
pub(crate) struct Fake {
    /// Tag or digest -> (content type, bytes).
    pub manifests: HashMap<String, (String, Vec<u8>)>,
    /// Digest -> bytes.
    pub blobs: HashMap<String, Vec<u8>>,
    pub auth: FakeAuth,
}

impl Fake {
    pub fn new(auth: FakeAuth) -> Fake {
        Fake {
            manifests: HashMap::new(),
            blobs: HashMap::new(),
            auth,
        }
    }

    /// Adds a blob; returns its digest.
    pub fn blob(&mut self, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        self.blobs.insert(digest.to_string(), bytes.to_vec());
        digest
    }

    /// Adds a manifest under its digest and the given tags; returns its digest.
    pub fn manifest(&mut self, media_type: &str, bytes: &[u8], tags: &[&str]) -> Digest {
        let digest = Digest::of(bytes);
        for reference in tags
            .iter()
            .map(|t| t.to_string())
            .chain([digest.to_string()])
        {
            self.manifests
                .insert(reference, (media_type.to_owned(), bytes.to_vec()));
        }
        digest
    }

    /// Serves on 127.0.0.1; returns `host:port` and the request log (`METHOD path auth`).
    pub fn serve(self) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = (self, addr.clone(), Arc::clone(&log));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = handle(&state.0, &state.1, &state.2, stream);
            }
        });
        (addr, log)
    }
}

fn handle(
    fake: &Fake,
    addr: &str,
    log: &Mutex<Vec<String>>,
    mut stream: TcpStream,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = value.trim().to_owned();
            }
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    log.lock()
        .expect("log")
        .push(format!("GET {path} {authorization}").trim_end().to_owned());
    let (status, headers, body) = answer(fake, addr, &path, &authorization);
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

type Answer = (&'static str, Vec<(&'static str, String)>, Vec<u8>);

fn answer(fake: &Fake, addr: &str, path: &str, authorization: &str) -> Answer {
    let unauthorized = |challenge: String| -> Answer {
        (
            "401 Unauthorized",
            vec![("WWW-Authenticate", challenge)],
            br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_vec(),
        )
    };
    if let Some(query) = path.strip_prefix("/token?") {
        return match &fake.auth {
            FakeAuth::Bearer { basic, .. }
                if basic.as_deref().is_some_and(|b| b != authorization) =>
            {
                ("401 Unauthorized", vec![], b"bad credentials".to_vec())
            }
            FakeAuth::Bearer { token, .. } if query.contains("scope=repository%3Ahello%3Apull") => {
                (
                    "200 OK",
                    vec![("Content-Type", "application/json".to_owned())],
                    format!(r#"{{"token":"{token}"}}"#).into_bytes(),
                )
            }
            _ => ("400 Bad Request", vec![], b"bad token request".to_vec()),
        };
    }
    match &fake.auth {
        FakeAuth::None => {}
        FakeAuth::Basic(expected) if expected != authorization => {
            return unauthorized(r#"Basic realm="fake""#.to_owned())
        }
        FakeAuth::Bearer { token, .. } if authorization != format!("Bearer {token}") => {
            return unauthorized(format!(
                r#"Bearer realm="http://{addr}/token",service="fake",scope="repository:hello:pull""#
            ))
        }
        _ => {}
    }
    let not_found = |code: &str| -> Answer {
        (
            "404 Not Found",
            vec![],
            format!(r#"{{"errors":[{{"code":"{code}"}}]}}"#).into_bytes(),
        )
    };
    if let Some(reference) = path.strip_prefix("/v2/hello/manifests/") {
        return match fake.manifests.get(reference) {
            Some((media_type, bytes)) => (
                "200 OK",
                vec![("Content-Type", media_type.clone())],
                bytes.clone(),
            ),
            None => not_found("MANIFEST_UNKNOWN"),
        };
    }
    if let Some(digest) = path.strip_prefix("/v2/hello/blobs/") {
        return match fake.blobs.get(digest) {
            Some(bytes) => ("200 OK", vec![], bytes.clone()),
            None => not_found("BLOB_UNKNOWN"),
        };
    }
    not_found("NAME_UNKNOWN")
}
