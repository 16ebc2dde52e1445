//! A small client for a board's HTTP API. Answers are read into the API's types
//! ([`baton_api`]) with [`Client::get`]; refusals carry the board's reason ([`ApiError`]).
//!
//! Boards speak TLS with certificates from their cluster's CA: [`Client::with_ca`] trusts a board
//! whose certificate chains to that CA, by whatever name or address it is reached (see
//! [`baton_cluster::tls::verify::ChainOnly`] for why the name is not checked). [`Client::new`]
//! speaks plain `http://` only, for boards whose cards have no CA.

use std::sync::Arc;
use std::time::Duration;

use baton_api::ApiError;
use serde::de::DeserializeOwned;

/// Errors talking to a board.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request failed (connection, timeout, HTTP error status).
    #[error("{url}: {message}")]
    Request {
        /// The URL requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The board answered with an error status.
    #[error("{url}: HTTP {code} {reason}")]
    Refused {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        code: u16,
        /// The board's reason (its `error` field), or the body when it has none.
        reason: String,
    },
    /// The board's answer is not what the API says it sends.
    #[error("{url}: unexpected answer: {source}")]
    Answer {
        /// The URL requested.
        url: String,
        /// Why it did not read.
        source: serde_json::Error,
    },
}

impl Error {
    /// The HTTP status of a refusal.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A board's API at `base` (e.g. `https://192.168.1.20:7070`), authenticated with `token`.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    agent: ureq::Agent,
}

impl Client {
    /// A client for the board at `base` over plain `http://` (an `https://` base fails every
    /// request with a message that asks for the CA: use [`Client::with_ca`]).
    pub fn new(base: &str, token: &str) -> Client {
        Client::build(base, token, None)
    }

    /// A client for the board at `base` that trusts boards whose certificates chain to the
    /// cluster CA `ca_pem` (the contents of `ca.pem`, one or more certificates).
    pub fn with_ca(base: &str, token: &str, ca_pem: &str) -> Result<Client, Error> {
        let tls =
            baton_cluster::tls::verify::client_config(ca_pem).map_err(|e| Error::Request {
                url: base.to_string(),
                message: e.to_string(),
            })?;
        Ok(Client::build(base, token, Some(tls)))
    }

    fn build(base: &str, token: &str, tls: Option<Arc<rustls::ClientConfig>>) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            agent: agent(config, &tls),
            tls,
        }
    }

    /// The URL of `path`, or an error when it needs TLS this client cannot speak.
    fn url(&self, path: &str) -> Result<String, Error> {
        let url = format!("{}{}", self.base, path);
        if self.tls.is_none() && !url.starts_with("http://") {
            return Err(Error::Request {
                url,
                message: "https:// needs the cluster CA (--ca FILE, BATON_CA, or the copy \
                          `baton image build` keeps in ~/.config/baton/<cluster>/ca.pem)"
                    .to_string(),
            });
        }
        Ok(url)
    }

    /// `GET /v1/status` as JSON; [`Client::get`] reads it as a [`baton_api::StatusReport`].
    pub fn status(&self) -> Result<serde_json::Value, Error> {
        self.get("/v1/status")
    }

    /// `GET path`, its successful answer read as `T` (one of the API's types, or
    /// `serde_json::Value`); another status is [`Error::Refused`].
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let (code, text) = self.text("GET", path)?;
        self.read(path, code, &text)
    }

    /// Reads a successful (2xx) answer `text` to `path` as `T`; another status is
    /// [`Error::Refused`] with the board's reason.
    pub fn read<T: DeserializeOwned>(&self, path: &str, code: u16, text: &str) -> Result<T, Error> {
        let url = format!("{}{}", self.base, path);
        if !(200..300).contains(&code) {
            return Err(Error::Refused {
                url,
                code,
                reason: refusal_reason(text),
            });
        }
        serde_json::from_str(text).map_err(|source| Error::Answer { url, source })
    }

    /// Sends one request; returns the status code and the body parsed as JSON (`Null` if it is not JSON).
    pub fn request(&self, method: &str, path: &str) -> Result<(u16, serde_json::Value), Error> {
        let (code, text) = self.text(method, path)?;
        Ok((
            code,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// Sends one request; returns the status code and the body as text.
    pub fn text(&self, method: &str, path: &str) -> Result<(u16, String), Error> {
        self.send(method, path, None)
    }

    /// Sends one request with an optional body; returns the status code and the body as text.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String), Error> {
        let url = self.url(path)?;
        let auth = format!("Bearer {}", self.token);
        let fail = |e: ureq::Error| Error::Request {
            url: url.clone(),
            message: e.to_string(),
        };
        let body = body.unwrap_or("");
        let response = match method {
            "POST" => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send(body),
            "PUT" => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/toml")
                .send(body),
            "DELETE" => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            _ => self.agent.get(&url).header("Authorization", &auth).call(),
        }
        .map_err(fail)?;
        let code = response.status().as_u16();
        let text = response.into_body().read_to_string().map_err(fail)?;
        Ok((code, text))
    }

    /// Streams `GET path` line by line into `each` until the board closes it.
    pub fn follow(&self, path: &str, mut each: impl FnMut(&str)) -> Result<(), Error> {
        use std::io::BufRead;
        let url = self.url(path)?;
        let fail = |e: ureq::Error| Error::Request {
            url: url.clone(),
            message: e.to_string(),
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(true)
            .build();
        let agent = agent(config, &self.tls);
        let response = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .map_err(fail)?;
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        for line in reader.lines() {
            let line = line.map_err(|e| Error::Request {
                url: url.clone(),
                message: e.to_string(),
            })?;
            each(&line);
        }
        Ok(())
    }
}

/// An agent with `config`, over TLS with `tls` when given.
fn agent(config: ureq::config::Config, tls: &Option<Arc<rustls::ClientConfig>>) -> ureq::Agent {
    match tls {
        Some(tls) => baton_cluster::tls::connector::agent(config, Arc::clone(tls)),
        None => config.into(),
    }
}

/// The reason in a refusal's body: its `error` field, or the body itself when it is not an
/// [`ApiError`].
pub fn refusal_reason(text: &str) -> String {
    serde_json::from_str::<ApiError>(text)
        .map(|e| e.error)
        .unwrap_or_else(|_| text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_without_the_ca_fails_with_a_message_that_asks_for_it() {
        let err = Client::new("https://192.0.2.1:7070", "t")
            .status()
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs the cluster CA"), "{err}");
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused() {
        let err = Client::with_ca("https://192.0.2.1:7070", "t", "nonsense").unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}
