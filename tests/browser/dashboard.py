#!/usr/bin/python3
"""Drives a board's dashboard in Debian's chromium (headless, through chromium-driver).

The browser trusts the cluster CA the way a user's would: the CA is imported into an NSS
store in a temporary HOME, and certificate errors are not ignored. Steps, each waited for
with a deadline (no fixed sleeps):

1. a wrong token is refused and the page says so; the right one signs in;
2. the cluster page shows every board and service by name, and this board's facts as
   GET /v1/status gives them;
3. a service's page shows its log lines as they arrive, hostile ones as text (no script
   runs, no element is made from them);
4. an instance killed (its memory hog) shows on the events page;
5. the service's page and the picture of who may call whom show that --caller may call it;
screenshots of every page at desktop width and at 360 px go to --shots.

With --boards a,b,c the cluster page must show each of those boards with its version and a
CPU share (read from the peers through the board answering); with --cluster-only the script
ends after the cluster page (a cluster whose services are not the lifecycle test's).

Usage: dashboard.py --api https://127.0.0.1:PORT --token T --ca ca.pem --service-port P
       --service NAME --caller NAME --board NAME --shots DIR [--services a,b]
       [--boards a,b,c] [--cluster-only]
Exits 0 when every step passed; otherwise prints what failed and exits 1.
"""

import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# What the board's service logs: HTML that would run if it were put in as markup.
HOSTILE = "/<script>document.title='pwned-script'</script><img/src=x/onerror=document.title='pwned-img'>"
MINUTE = 60
WIDE = (1280, 900)
PHONE = (360, 760)


def trusting_home(ca_pem: str) -> str:
    """A HOME whose NSS store trusts every CA in the PEM bundle (as `certutil -A` would for a user)."""
    home = tempfile.mkdtemp(prefix="baton-browser-")
    db = os.path.join(home, ".pki", "nssdb")
    os.makedirs(db)
    subprocess.run(["certutil", "-N", "-d", "sql:" + db, "--empty-password"], check=True)
    certs = [c + "-----END CERTIFICATE-----\n" for c in ca_pem.split("-----END CERTIFICATE-----") if "BEGIN" in c]
    for i, cert in enumerate(certs):
        path = os.path.join(home, f"ca{i}.pem")
        with open(path, "w") as f:
            f.write(cert.strip() + "\n")
        subprocess.run(["certutil", "-A", "-d", "sql:" + db, "-n", f"baton-ca-{i}", "-t", "C,,", "-i", path], check=True)
    return home


def browser(home: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WIDE[0]},{WIDE[1]}", f"--user-data-dir={home}/profile",
                "--no-first-run", "--disable-background-networking"]:
        options.add_argument(arg)
    # The page's console, printed when a step fails.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    env = dict(os.environ, HOME=home)
    service = Service(executable_path="/usr/bin/chromedriver", env=env)
    return webdriver.Chrome(service=service, options=options)


def api_get(api: str, token: str, ca: str, path: str):
    ctx = ssl.create_default_context(cafile=ca)
    request = urllib.request.Request(api + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, context=ctx, timeout=20) as answer:
        return json.load(answer)


def raw_get(port: int, path: str):
    """One request with `path` as written (the hostile line is logged by the service as it came)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        while s.recv(4096):
            pass


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--api", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--service-port", type=int, required=True)
    p.add_argument("--services", default="")
    p.add_argument("--board", required=True)
    p.add_argument("--caller", required=True)
    p.add_argument("--shots", required=True)
    p.add_argument("--boards", default="")
    p.add_argument("--cluster-only", action="store_true")
    a = p.parse_args()
    os.makedirs(a.shots, exist_ok=True)
    with open(a.ca) as f:
        home = trusting_home(f.read())
    started = time.monotonic()
    driver = browser(home)
    step = "start"
    try:
        wait = WebDriverWait(driver, MINUTE)

        def shoot(name: str) -> None:
            for (w, h), suffix in [(WIDE, "desktop"), (PHONE, "phone")]:
                driver.set_window_size(w, h)
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(w, min(max(h, height + 120), 4000))
                driver.save_screenshot(os.path.join(a.shots, f"{name}-{suffix}.png"))
                # One column: the page itself never scrolls sideways (its tables do, inside).
                wide = driver.execute_script(
                    "return [document.documentElement.scrollWidth, window.innerWidth]")
                if wide[0] > wide[1]:
                    raise AssertionError(f"{name} at {w} px is {wide[0]} px wide")
            driver.set_window_size(*WIDE)

        def text(selector: str) -> str:
            return driver.find_element(By.CSS_SELECTOR, selector).text

        def shown(selector: str, want=None):
            def check(d):
                found = d.find_elements(By.CSS_SELECTOR, selector)
                if not found or not found[0].is_displayed():
                    return False
                return want is None or want(found[0].text)
            return wait.until(check, f"{selector} on the page")

        step = "the sign-in page, over TLS trusted through the NSS store"
        driver.get(a.api + "/")
        shown("#token")
        if driver.execute_script("return location.protocol") != "https:":
            raise AssertionError("not https")
        shoot("signin")

        step = "a wrong token is refused and the page says so"
        driver.find_element(By.ID, "token").send_keys("not-the-token")
        driver.find_element(By.CSS_SELECTOR, "#signin button").click()
        shown("#signin-error", lambda t: "Wrong token" in t)
        shoot("signin-refused")
        if not driver.find_element(By.ID, "nav").get_attribute("hidden"):
            raise AssertionError("signed in with a wrong token")

        step = "the right token signs in"
        field = driver.find_element(By.ID, "token")
        field.clear()
        field.send_keys(a.token)
        driver.find_element(By.CSS_SELECTOR, "#signin button").click()
        shown("#nav")
        cookies = {c["name"]: c for c in driver.get_cookies()}
        cookie = cookies.get("__Host-baton_dash")
        if not cookie or not cookie["httpOnly"] or not cookie["secure"] or cookie.get("sameSite") != "Strict":
            raise AssertionError(f"session cookie: {cookies}")
        if driver.execute_script("return document.cookie").find("baton_dash") >= 0:
            raise AssertionError("the page's script can read the session cookie")

        step = "the cluster page shows the board and the services, as /v1/status says"
        status = api_get(a.api, a.token, a.ca, "/v1/status")
        shown(f'#boards tr[data-board="{a.board}"]')
        for service in [s for s in a.services.split(",") if s] + [a.service]:
            shown(f'#services tr[data-service="{service}"]')
        for fact, key in [("hostname", "hostname"), ("model", "board"), ("kernel", "kernel")]:
            shown(f"#fact-{fact}", lambda t, v=status[key]: t == v)
        for address in status["addresses"]:
            shown("#fact-addresses", lambda t, v=address["address"]: v in t)
        # A board's CPU is a difference of two readings of /v1/boards, 5 s apart.
        shown(f'#boards tr[data-board="{a.board}"] td.cpu', lambda t: t.endswith("%"))
        shown(f'#boards tr[data-board="{a.board}"] td.version', lambda t: t == status["version"])
        services = api_get(a.api, a.token, a.ca, "/v1/services")["services"]
        mine = next(s for s in services if s["name"] == a.service)
        row = f'#services tr[data-service="{a.service}"]'
        shown(f"{row} td.desired", lambda t: t == str(mine["desired"]))
        for board in [b for b in a.boards.split(",") if b]:
            shown(f'#boards tr[data-board="{board}"] td.version', lambda t: t == status["version"])
            shown(f'#boards tr[data-board="{board}"] td.cpu', lambda t: t.endswith("%"))
        shoot("cluster")
        if a.cluster_only:
            print(f"dashboard: the cluster page passed in {time.monotonic() - started:.1f} s; screenshots in", a.shots)
            return 0

        step = "a service's page shows its log lines as they arrive, hostile ones as text"
        driver.find_element(By.CSS_SELECTOR, f"{row} a").click()
        shown("#service-name", lambda t: t == a.service)
        shown(f'#instances tr[data-instance="{a.service}-1"]')
        marker = "/dashboard-marker"
        raw_get(a.service_port, marker)
        shown("#logs", lambda t: marker in t)
        raw_get(a.service_port, HOSTILE)
        shown("#logs", lambda t: "<script>document.title='pwned-script'</script>" in t)
        shown("#logs", lambda t: "onerror=document.title='pwned-img'>" in t)
        if "pwned" in driver.title:
            raise AssertionError(f"a script from a log line ran: title {driver.title!r}")
        made = driver.execute_script("return document.querySelectorAll('#logs script, #logs img').length")
        if made != 0:
            raise AssertionError(f"{made} elements were made from a log line")
        shown("#allow-in", lambda t: a.caller in t.split(", "))
        shoot("service")

        step = "an instance killed shows on the events page"
        driver.find_element(By.CSS_SELECTOR, 'nav a[href="#/events"]').click()
        shown("#events-state", lambda t: t.startswith("Live"))
        raw_get(a.service_port, "/hog")
        WebDriverWait(driver, 2 * MINUTE).until(
            lambda d: any(a.service in e.text for e in
                          d.find_elements(By.CSS_SELECTOR, '#events li[data-kind="instance-crashed"]')),
            "an instance-crashed event for the service on the events page")
        shoot("events")
        if "pwned" in driver.title:
            raise AssertionError(f"a script ran: title {driver.title!r}")

        step = "the page of who may call whom draws the services"
        driver.find_element(By.CSS_SELECTOR, 'nav a[href="#/calls"]').click()
        shown(f'#graph g.node[data-service="{a.service}"]')
        # A line may have no width (a vertical one): present is enough.
        edge = f'#graph line.edge[data-from="{a.caller}"][data-to="{a.service}"]'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, edge), f"{edge} on the page")
        shown("#call-list", lambda t: a.caller in t and a.service in t)
        shoot("calls")

        step = "signing out ends the session"
        driver.find_element(By.ID, "logout").click()
        shown("#token")
        driver.get(a.api + "/")
        shown("#token")
        print(f"dashboard: every step passed in {time.monotonic() - started:.1f} s; screenshots in", a.shots)
        return 0
    except (AssertionError, TimeoutException, StopIteration, KeyError) as e:
        print(f"dashboard: FAILED at: {step}: {type(e).__name__}: {e}", file=sys.stderr)
        try:
            driver.save_screenshot(os.path.join(a.shots, "failure.png"))
            print("page text at the failure:\n" + driver.find_element(By.TAG_NAME, "body").text, file=sys.stderr)
            for entry in driver.get_log("browser"):
                print("browser console:", entry, file=sys.stderr)
        except Exception as more:  # the report must not hide the failure
            print("(could not take the failure's screenshot:", more, ")", file=sys.stderr)
        return 1
    finally:
        driver.quit()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
