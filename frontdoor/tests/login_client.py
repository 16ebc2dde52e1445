#!/usr/bin/env python3
"""A browser for the front door's sign-in test, on the standard library only: it keeps cookies
(http.cookiejar), follows redirects, and fills in and posts the identity provider's own login and
consent forms. It trusts only the test CA given.

  login_client.py CA_PEM signin PAGE_URL       sign in, fetch the page again, log out, fetch again
  login_client.py CA_PEM tamper-state PAGE_URL
  login_client.py CA_PEM tamper-cookie PAGE_URL
  login_client.py CA_PEM other-code PAGE_URL   a code from a second sign-in (another verifier)
  login_client.py CA_PEM roam PAGE_URL OTHER_URL [OTHER_ADDRESS]
                                               sign in through PAGE_URL, then fetch OTHER_URL with
                                               the same cookies (another board), its host mapped to
                                               OTHER_ADDRESS when given
  login_client.py CA_PEM json PAGE_URL
  login_client.py CA_PEM bearer PAGE_URL       a browser that sends a (bad) bearer token
  login_client.py CA_PEM token PAGE_URL ISSUER SECRET
                                               a client_credentials token from the provider, sent

Each prints one JSON object on stdout for the Rust test to check. CA_PEM may hold several
certificates (the cluster CA and the provider's test CA). BATON_RESOLVE="host=address,..." maps
host names to addresses without DNS (as curl's --resolve), for a test whose names are not in DNS.
"""

import base64
import html.parser
import http.cookiejar
import json
import os
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT = 20
CALLBACK = "/.baton/auth/callback"
LOGIN_COOKIE = "__Host-baton_login"
SESSION_COOKIE = "__Host-baton_session"


# Host names mapped to addresses (BATON_RESOLVE), looked up before the system's resolver.
RESOLVE = dict(
    pair.split("=", 1) for pair in os.environ.get("BATON_RESOLVE", "").split(",") if "=" in pair
)
_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, *args, **kwargs):
    return _getaddrinfo(RESOLVE.get(host, host), *args, **kwargs)


socket.getaddrinfo = getaddrinfo


class Form(html.parser.HTMLParser):
    """The first POST form of a page: its action and its inputs' names and values."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}
        self.inside = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None and attrs.get("method", "").lower() == "post":
            self.action = attrs.get("action", "")
            self.inside = True
        elif tag == "input" and self.inside and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False


class Trace(urllib.request.BaseHandler):
    """Names each request on stderr, so a failed test shows where the flow stopped."""

    handler_order = 100

    def https_request(self, req):
        print(f"browser: {req.get_method()} {req.full_url}", file=sys.stderr)
        return req


class StopAtCallback(urllib.request.HTTPRedirectHandler):
    """Follows redirects, except the one to the front door's callback, which is kept so that a
    test can alter it before sending it."""

    def __init__(self):
        self.callback = None

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if self.stop and urllib.parse.urlsplit(newurl).path == CALLBACK:
            self.callback = newurl
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Browser:
    def __init__(self, ca, stop_at_callback=False):
        self.jar = http.cookiejar.CookieJar()
        context = ssl.create_default_context(cafile=ca)
        self.redirects = StopAtCallback()
        self.redirects.stop = stop_at_callback
        handlers = [
            urllib.request.HTTPCookieProcessor(self.jar),
            urllib.request.HTTPSHandler(context=context),
            Trace(),
        ]
        self.opener = urllib.request.build_opener(*handlers, self.redirects)
        self.raw = urllib.request.build_opener(*handlers, NoRedirect())

    def open(self, url, data=None, headers=None, follow=True):
        req = urllib.request.Request(url, data=data, headers=headers or {"Accept": "text/html"})
        try:
            with (self.opener if follow else self.raw).open(req, timeout=TIMEOUT) as r:
                return r.status, r.geturl(), dict(r.headers), r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            # Header names in lower case; Set-Cookie as the list of every one.
            heads = {k.lower(): v for k, v in e.headers.items()}
            heads["set-cookie"] = e.headers.get_all("Set-Cookie") or []
            return e.code, url, heads, e.read().decode("utf-8", "replace")

    def through_forms(self, url):
        """Opens url and posts each form the provider shows (login with any name, then consent)
        until the answer is no longer one of its forms."""
        status, at, headers, body = self.open(url)
        for _ in range(6):
            if self.redirects.callback or status != 200:
                break
            form = Form()
            form.feed(body)
            if form.action is None or "/interaction/" not in form.action:
                break
            fields = dict(form.fields)
            if "login" in fields:
                fields["login"] = "ann"
                fields["password"] = "any"
            data = urllib.parse.urlencode(fields).encode()
            status, at, headers, body = self.open(urllib.parse.urljoin(at, form.action), data=data)
        return status, at, headers, body

    def cookie(self, name):
        return next((c.value for c in self.jar if c.name == name), None)

    def set_cookie(self, name, value):
        for c in list(self.jar):
            if c.name == name:
                c.value = value


def altered(text, where):
    """text with the character at where changed."""
    c = "A" if text[where] != "A" else "B"
    return text[:where] + c + text[where + 1 :]


def with_param(url, name, value):
    parts = urllib.parse.urlsplit(url)
    query = [(k, value if k == name else v) for k, v in urllib.parse.parse_qsl(parts.query)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def main():
    ca, mode, url = sys.argv[1:4]
    out = {}
    if mode == "signin":
        b = Browser(ca)
        status, at, _, body = b.through_forms(url)
        out["first"] = {"status": status, "url": at, "body": body}
        out["session_cookie"] = b.cookie(SESSION_COOKIE) is not None
        out["login_cookie_left"] = b.cookie(LOGIN_COOKIE) not in (None, "")
        status, at, _, body = b.open(url, follow=False)
        out["again"] = {"status": status, "url": at, "body": body}
        base = urllib.parse.urlsplit(url)
        logout = urllib.parse.urlunsplit((base.scheme, base.netloc, "/.baton/auth/logout", "", ""))
        status, _, headers, _ = b.open(logout, follow=False)
        out["logout"] = {"status": status, "location": headers.get("location"), "set_cookie": headers.get("set-cookie")}
        status, _, headers, _ = b.open(url, follow=False)
        out["after_logout"] = {"status": status, "location": headers.get("location")}
    elif mode in ("tamper-state", "tamper-cookie", "other-code"):
        b = Browser(ca, stop_at_callback=True)
        b.through_forms(url)
        callback = b.redirects.callback
        if callback is None:
            raise SystemExit("the provider never sent the browser back to the callback")
        if mode == "tamper-state":
            state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["state"]
            callback = with_param(callback, "state", altered(state, len(state) // 2))
        elif mode == "tamper-cookie":
            value = b.cookie(LOGIN_COOKIE)
            b.set_cookie(LOGIN_COOKIE, altered(value, len(value) // 2))
        else:
            # A second sign-in in another browser, whose code is then brought to the first
            # browser's callback (with the first browser's own state, so only PKCE can tell).
            other = Browser(ca, stop_at_callback=True)
            other.through_forms(url)
            code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(other.redirects.callback).query))["code"]
            callback = with_param(callback, "code", code)
        status, _, headers, body = b.open(callback, follow=False)
        set_cookie = headers.get("set-cookie") or []
        if isinstance(set_cookie, str):
            set_cookie = [set_cookie]
        out = {"status": status, "body": body, "set_cookie": set_cookie,
               "session_cookie": b.cookie(SESSION_COOKIE) not in (None, "")}
    elif mode == "roam":
        b = Browser(ca)
        status, _, _, body = b.through_forms(url)
        out["first"] = {"status": status, "body": body}
        other = sys.argv[4]
        if len(sys.argv) > 5:
            RESOLVE[urllib.parse.urlsplit(other).hostname] = sys.argv[5]
        status, _, headers, body = b.open(other, follow=False)
        out["other"] = {"status": status, "location": headers.get("location"), "body": body}
    elif mode == "json":
        b = Browser(ca)
        status, _, headers, body = b.open(url, headers={"Accept": "application/json"}, follow=False)
        out = {"status": status, "location": headers.get("location"), "www_authenticate": headers.get("www-authenticate")}
    elif mode == "bearer":
        b = Browser(ca)
        headers = {"Accept": "text/html", "Authorization": "Bearer not.a.token"}
        status, _, headers, body = b.open(url, headers=headers, follow=False)
        out = {"status": status, "location": headers.get("location"), "www_authenticate": headers.get("www-authenticate")}
    elif mode == "token":
        issuer, secret = sys.argv[4], sys.argv[5]
        b = Browser(ca)
        basic = base64.b64encode(f"baton:{secret}".encode()).decode()
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": "urn:baton"})
        status, _, _, body = b.open(
            issuer + "/token", data=form.encode(), headers={"Authorization": f"Basic {basic}"}
        )
        if status != 200:
            raise SystemExit(f"the provider gave no token: {status} {body}")
        token = json.loads(body)["access_token"]
        headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
        status, _, _, body = b.open(url, headers=headers, follow=False)
        out = {"status": status, "body": body}
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
