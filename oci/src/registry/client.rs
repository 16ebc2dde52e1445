//! One repository on one registry: requests with authentication handled (anonymous, basic, bearer).

use super::auth::{self, Challenge};
use super::{tls, RegistryError, RegistryOptions};
use std::time::Duration;
use ureq::http::Response;
use ureq::Body;

/// The largest error body quoted in a message.
const MAX_QUOTED_BODY: usize = 200;
/// The largest token endpoint answer read.
const MAX_TOKEN_BYTES: u64 = 1 << 20;

/// What to send in `Authorization`, once the registry asked for it.
#[derive(Debug, Clone)]
enum Auth {
    Anonymous,
    Basic(String),
    Bearer(String),
}

/// A client for one repository of one registry.
pub(crate) struct Client {
    agent: ureq::Agent,
    registry: String,
    https: bool,
    base: String,
    repository: String,
    options: RegistryOptions,
    auth: Auth,
}

impl Client {
    /// A client for `repository` on `registry` (the API host, with optional port), over HTTPS
    /// unless [`tls::plain_http`] says otherwise. Fails when the registry's CA file is unusable.
    pub fn new(
        registry: &str,
        repository: &str,
        options: &RegistryOptions,
    ) -> Result<Client, RegistryError> {
        let https = !tls::plain_http(registry, options);
        let scheme = if https { "https" } else { "http" };
        let config = ureq::Agent::config_builder()
            .tls_config(tls::config(registry, options)?)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(30 * 60)))
            .build();
        Ok(Client {
            agent: config.into(),
            registry: registry.to_owned(),
            https,
            base: format!("{scheme}://{registry}/v2/{repository}"),
            repository: repository.to_owned(),
            options: options.clone(),
            auth: Auth::Anonymous,
        })
    }

    /// The registry host, for messages.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `GET /v2/<repository>/<path>` with `accept`, authenticating when the registry asks to. Returns a
    /// `200` response; `404` is [`RegistryError::NotFound`] naming `what`, other statuses are errors.
    pub fn get(
        &mut self,
        path: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<Response<Body>, RegistryError> {
        let url = format!("{}/{path}", self.base);
        let mut authenticated = false;
        loop {
            let mut response = self.send(&url, accept)?;
            match response.status().as_u16() {
                200 => return Ok(response),
                401 if !authenticated => {
                    let header = response
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    self.authenticate(&url, header.as_deref())?;
                    authenticated = true;
                }
                401 => {
                    return Err(RegistryError::Unauthorized {
                        registry: self.registry.clone(),
                        url,
                        hint: self.credentials_hint(),
                    })
                }
                403 => {
                    return Err(RegistryError::Denied {
                        registry: self.registry.clone(),
                        url,
                    })
                }
                404 => {
                    return Err(RegistryError::NotFound {
                        registry: self.registry.clone(),
                        what: what.to_owned(),
                    })
                }
                status => {
                    let body = quote_body(&mut response);
                    return Err(RegistryError::Status {
                        registry: self.registry.clone(),
                        url,
                        status,
                        body,
                    });
                }
            }
        }
    }

    /// Turns an error while reading a body into an unreachable-registry error.
    pub fn body_error(&self, url_path: &str, reason: impl std::fmt::Display) -> RegistryError {
        RegistryError::Unreachable {
            registry: self.registry.clone(),
            url: format!("{}/{url_path}", self.base),
            reason: reason.to_string(),
        }
    }

    fn send(&self, url: &str, accept: Option<&str>) -> Result<Response<Body>, RegistryError> {
        let mut request = self.agent.get(url);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        match &self.auth {
            Auth::Anonymous => {}
            Auth::Basic(header) => request = request.header("Authorization", header),
            Auth::Bearer(token) => {
                request = request.header("Authorization", &format!("Bearer {token}"))
            }
        }
        request.call().map_err(|e| self.request_error(url, &e))
    }

    /// A failed request as an error: [`RegistryError::Tls`] for TLS failures, else unreachable.
    fn request_error(&self, url: &str, error: &ureq::Error) -> RegistryError {
        match tls::describe(error, &self.registry, &self.options) {
            Some(reason) => RegistryError::Tls {
                registry: self.registry.clone(),
                url: url.to_owned(),
                reason,
            },
            None => RegistryError::Unreachable {
                registry: self.registry.clone(),
                url: url.to_owned(),
                reason: match error {
                    ureq::Error::Protocol(_) if !self.https => format!(
                        "{error} (it spoke plain HTTP because of insecure = true: does the registry want HTTPS?)"
                    ),
                    _ => error.to_string(),
                },
            },
        }
    }

    fn credentials_hint(&self) -> &'static str {
        if self.options.credentials.is_some() {
            " (the configured credentials were refused)"
        } else {
            " (no credentials configured: add [registries.\"HOST\"] username and password to cluster.toml)"
        }
    }

    /// Answers a `401`'s challenge: basic credentials, or a bearer token from the token endpoint.
    fn authenticate(&mut self, url: &str, header: Option<&str>) -> Result<(), RegistryError> {
        let auth_error = |reason: String| RegistryError::Auth {
            registry: self.registry.clone(),
            reason,
        };
        let unauthorized = || RegistryError::Unauthorized {
            registry: self.registry.clone(),
            url: url.to_owned(),
            hint: self.credentials_hint(),
        };
        let Some(header) = header else {
            return Err(unauthorized());
        };
        let basic = self
            .options
            .credentials
            .as_ref()
            .map(|c| auth::basic_header(&c.username, &c.password));
        match auth::parse_challenge(header).map_err(auth_error)? {
            Challenge::Basic => {
                self.auth = Auth::Basic(basic.ok_or_else(unauthorized)?);
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let default_scope = format!("repository:{}:pull", self.repository);
                let token_url =
                    auth::token_url(&realm, service.as_deref(), scope.as_deref(), &default_scope);
                let plain = token_url.starts_with("http://");
                if !plain && !token_url.starts_with("https://") {
                    return Err(auth_error(format!(
                        "token endpoint {realm:?} is not an http:// or https:// URL"
                    )));
                }
                if plain && self.https {
                    return Err(auth_error(format!(
                        "token endpoint {realm:?} is plain HTTP for an HTTPS registry: refused, credentials and tokens would travel unencrypted"
                    )));
                }
                let mut request = self.agent.get(&token_url);
                if let Some(basic) = &basic {
                    request = request.header("Authorization", basic);
                }
                let mut response = request
                    .call()
                    .map_err(|e| self.request_error(&token_url, &e))?;
                match response.status().as_u16() {
                    200 => {}
                    401 | 403 => {
                        return Err(auth_error(format!(
                            "the token endpoint {realm} refused{}",
                            self.credentials_hint()
                        )))
                    }
                    status => {
                        return Err(auth_error(format!(
                            "the token endpoint {realm} answered {status}: {}",
                            quote_body(&mut response)
                        )))
                    }
                }
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_TOKEN_BYTES)
                    .read_to_vec()
                    .map_err(|e| auth_error(format!("reading the token endpoint's answer: {e}")))?;
                self.auth = Auth::Bearer(auth::token_from_json(&body).map_err(auth_error)?);
            }
        }
        Ok(())
    }
}

/// The start of an error body, for a message.
fn quote_body(response: &mut Response<Body>) -> String {
    let body = response
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_vec()
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
