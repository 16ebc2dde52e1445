//! The answers the front door gives itself: short pages that say what happened, in HTML for
//! browsers and plain text for everything else. Every text from the request is escaped.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::{full, Body};

/// Whether the client prefers HTML (a browser).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// A page with `status`, a title and a sentence.
pub fn page(status: StatusCode, html: bool, title: &str, text: &str) -> Response<Body> {
    let (body, kind) = if html {
        let body = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{code} {title}</title></head>\
             <body><h1>{code} {title}</h1><p>{text}</p><hr><p>baton front door</p></body></html>\n",
            code = status.as_u16(),
            title = escape(title),
            text = escape(text),
        );
        (body, "text/html; charset=utf-8")
    } else {
        (
            format!("{} {title}: {text}\n", status.as_u16()),
            "text/plain; charset=utf-8",
        )
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 404: no route for this host and path.
pub fn no_route(html: bool, host: &str, path: &str) -> Response<Body> {
    page(
        StatusCode::NOT_FOUND,
        html,
        "Not Found",
        &format!("no route of this cluster matches host {host:?} and path {path:?}"),
    )
}

/// 400 with the reason.
pub fn bad_request(html: bool, why: &str) -> Response<Body> {
    page(StatusCode::BAD_REQUEST, html, "Bad Request", why)
}

/// 503 with `Retry-After`: nothing can answer now.
pub fn unavailable(html: bool, why: &str, retry_after_s: u32) -> Response<Body> {
    let mut response = page(
        StatusCode::SERVICE_UNAVAILABLE,
        html,
        "Service Unavailable",
        why,
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_s));
    response
}

/// 429 with `Retry-After`: the client asks too often.
pub fn too_many(html: bool, retry_after_s: u32) -> Response<Body> {
    let mut response = page(
        StatusCode::TOO_MANY_REQUESTS,
        html,
        "Too Many Requests",
        "this address sends requests faster than the front door allows; slow down",
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_s));
    response
}

/// 502: the instance failed to answer.
pub fn bad_gateway(html: bool, why: &str) -> Response<Body> {
    page(StatusCode::BAD_GATEWAY, html, "Bad Gateway", why)
}

/// 504: the instance did not answer in the route's time.
pub fn gateway_timeout(html: bool, service: &str, ms: u64) -> Response<Body> {
    page(
        StatusCode::GATEWAY_TIMEOUT,
        html,
        "Gateway Timeout",
        &format!("{service} did not answer within the route's timeout of {ms} ms"),
    )
}

/// 308 to `location` (plain HTTP to HTTPS).
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = page(
        StatusCode::PERMANENT_REDIRECT,
        false,
        "Permanent Redirect",
        &format!("this route is served over HTTPS: {location}"),
    );
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_text_is_escaped_in_html() {
        use http_body_util::BodyExt as _;
        let page = no_route(true, "<script>", "/\"x\"");
        assert_eq!(page.status(), StatusCode::NOT_FOUND);
        let body = page.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("&lt;script&gt;"), "{text}");
        assert!(!text.contains("<script>"), "{text}");
    }

    #[test]
    fn unavailable_says_when_to_come_back() {
        let page = unavailable(false, "no ready instance", 5);
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(page.headers()[RETRY_AFTER], "5");
    }
}
