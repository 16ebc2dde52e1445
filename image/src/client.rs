//! A small client for a board's HTTP API.

use std::time::Duration;

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
}

/// A board's API at `base` (e.g. `http://127.0.0.1:7070`), authenticated with `token`.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for the board at `base`.
    pub fn new(base: &str, token: &str) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            agent: config.into(),
        }
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<serde_json::Value, Error> {
        let (code, body) = self.request("GET", "/v1/status")?;
        self.expect_ok(code, body, "/v1/status")
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
        let url = format!("{}{}", self.base, path);
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
        let url = format!("{}{}", self.base, path);
        let fail = |e: ureq::Error| Error::Request {
            url: url.clone(),
            message: e.to_string(),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(true)
            .build()
            .into();
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

    fn expect_ok(
        &self,
        code: u16,
        body: serde_json::Value,
        path: &str,
    ) -> Result<serde_json::Value, Error> {
        if code == 200 {
            return Ok(body);
        }
        let reason = body
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("")
            .to_string();
        Err(Error::Request {
            url: format!("{}{}", self.base, path),
            message: format!("HTTP {code} {reason}"),
        })
    }
}
