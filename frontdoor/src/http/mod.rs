//! The client side of the front door: serving connections ([`serve`]), the answers it gives
//! itself ([`pages`]), the headers it sets and removes ([`headers`], [`hygiene`]) and the
//! per-client request rate ([`rate`]).

pub mod headers;
pub mod hygiene;
pub mod pages;
pub mod quiet;
pub mod rate;
pub mod serve;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full};

/// Errors a body may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the front door sends and of every request it passes on.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A body of `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// The scheme a request came in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTPS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}
