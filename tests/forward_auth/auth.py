#!/usr/bin/python3
"""A small forward-auth service for baton's front door tests (stdlib only).

Answers every GET the way Authelia's /api/verify does for the cases the tests need:
- the cookie `session=good`: 200 with Remote-User: ann, Remote-Email: ann@lan and
  Remote-Groups: admins (the front door copies what the route asks for);
- otherwise, a browser (Accept with text/html): 302 to http://auth.lan/login?rd=<X-Original-URL>
  with a Set-Cookie, and a short body;
- otherwise: 401 with WWW-Authenticate: Basic realm="baton-e2e".

Usage: auth.py [--port N] [--log FILE]. Port 0 (the default) takes a free port; the first line
on stdout is `listening on <port>`. With --log, each question's method, path and headers are
appended to FILE, a blank line after each, so a test can check what the front door sent.
"""

import argparse
import http.server
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_file = None
    lock = threading.Lock()

    def log_message(self, fmt, *args):
        pass  # quiet: the log file says what came

    def record(self):
        if not self.log_file:
            return
        lines = [f"{self.command} {self.path}"]
        lines += [f"{k.lower()}: {v}" for k, v in self.headers.items()]
        with self.lock, open(self.log_file, "a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n\n")

    def answer(self, status, headers, body):
        data = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.record()
        cookies = [c.strip() for c in self.headers.get("Cookie", "").split(";")]
        if "session=good" in cookies:
            self.answer(
                200,
                [
                    ("Remote-User", "ann"),
                    ("Remote-Email", "ann@lan"),
                    ("Remote-Groups", "admins"),
                ],
                "ok\n",
            )
        elif "text/html" in self.headers.get("Accept", ""):
            back = self.headers.get("X-Original-URL", "")
            self.answer(
                302,
                [
                    ("Location", f"http://auth.lan/login?rd={back}"),
                    ("Set-Cookie", "auth_state=s1; HttpOnly"),
                ],
                "sign in first\n",
            )
        else:
            self.answer(
                401, [("WWW-Authenticate", 'Basic realm="baton-e2e"')], "who are you?\n"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--log")
    args = parser.parse_args()
    Handler.log_file = args.log
    server = http.server.ThreadingHTTPServer((args.bind, args.port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
