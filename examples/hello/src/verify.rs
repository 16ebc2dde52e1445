//! `GET /verify`: a forward-auth answer, so a hello service can guard another service's route
//! (`auth = "forward"`, `forward = { url = "http://<service>:8080/verify" }`) in baton's tests.
//! The cookie `session=good` gets 200 with `Remote-User: ann`, `Remote-Email: ann@lan`,
//! `Remote-Groups: admins` and `Remote-Host: <hostname>` (which instance said yes); anything
//! else gets 401 with `WWW-Authenticate: Basic realm="hello"`.

use std::io::Write;
use std::net::TcpStream;

use crate::request::Request;

/// Answers `request` and closes the connection.
pub fn serve(request: &Request, hostname: &str, stream: &mut TcpStream) -> std::io::Result<()> {
    let good = request
        .values("cookie")
        .flat_map(|v| v.split(';'))
        .any(|c| c.trim() == "session=good");
    let (status, headers, body) = if good {
        (
            "200 OK",
            format!(
                "Remote-User: ann\r\nRemote-Email: ann@lan\r\nRemote-Groups: admins\r\n\
                 Remote-Host: {hostname}\r\n"
            ),
            "ok\n",
        )
    } else {
        (
            "401 Unauthorized",
            "WWW-Authenticate: Basic realm=\"hello\"\r\n".to_string(),
            "who are you?\n",
        )
    };
    println!("hello: GET {} -> {status}", request.target);
    let answer = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    // One write: the stream is unbuffered.
    stream.write_all(answer.as_bytes())
}

#[cfg(test)]
mod tests {
    use crate::test_server;

    #[test]
    fn the_good_cookie_is_let_in_with_the_user_and_others_are_refused() {
        let port = test_server::start();
        let (code, body) = test_server::get(port, "/verify", "Cookie: a=1; session=good\r\n");
        assert_eq!((code, body.as_str()), (200, "ok\n"));
        let (code, body) = test_server::get(port, "/verify", "Cookie: session=bad\r\n");
        assert_eq!((code, body.as_str()), (401, "who are you?\n"));
        let (code, _) = test_server::get(port, "/verify?rd=x", "");
        assert_eq!(code, 401);
    }
}
