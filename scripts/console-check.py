#!/usr/bin/env python3
"""Checks the operator console (/ui) in a real headless Chromium, driven through the Chrome DevTools Protocol
(over --remote-debugging-pipe: no extra Python package), against a real `allot serve`.

    python3 scripts/console-check.py [--allot .build/debug/allot] [--out DIR] [--nodes 200] [--big-nodes 5000]

It starts `allot serve` (token authentication, the `fake` driver with a fleet from scripts/console-fleet.py, one
node named `<img src=x onerror=alert(1)>`, pinned CPUs and PCI devices, instances, a resize in flight), logs in
with the admin token, and checks every page against the API's own answers: no console error, the DOM shows what
the API says, a claim made through the CLI appears on the open fleet page without a reload, markup in names is
text. Then it logs in again as a reader, and finally opens the fleet of a second server with --big-nodes nodes
and reports how long the page took to be interactive (reported, not asserted). Screenshots of every page go to
--out. The last line is `console-check: N checks, M failed`; the exit status is 1 when a check failed.
"""
import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
XSS_NAME = "<img src=x onerror=alert(1)>"
DEDICATED = "4-15"
PCI_SPEC = '{"vendor_id": "8086", "product_id": "154c"}'
PCI_ALIAS = '{"name": "vf", "vendor_id": "8086", "product_id": "154c", "device_type": "type-VF"}'


def log(message):
    print(f"console-check: {message}", file=sys.stderr, flush=True)


def node_uuid(index):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"allot-console-fleet/{index}"))


class Checks:
    def __init__(self):
        self.items = []

    def add(self, name, ok, detail=""):
        self.items.append({"name": name, "ok": bool(ok), "detail": detail})
        log(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail else ""))
        return ok

    @property
    def failed(self):
        return [item for item in self.items if not item["ok"]]


# MARK: the server


class Server:
    """`allot serve` on the first free port from `first_port` (the next one when it is taken)."""

    def __init__(self, binary, directory, fleet, auth, first_port):
        self.binary, self.directory, self.auth = binary, directory, auth
        self.database = os.path.join(directory, "allot.sqlite")
        self.process = None
        for port in range(first_port, first_port + 40):
            if not port_free(port):
                continue
            self.port = port
            self.url = f"http://127.0.0.1:{port}"
            self.log_path = os.path.join(directory, f"serve-{port}.log")
            args = [binary, "serve", "--port", str(port), "--database", self.database, "--auth", auth,
                    "--driver", "fake", "--nodes-file", fleet, "--audit-interval", "0", "--log-format", "json",
                    "--cpu-dedicated-set", DEDICATED, "--pci-device-spec", PCI_SPEC, "--pci-alias", PCI_ALIAS]
            with open(self.log_path, "w") as handle:
                self.process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)
            if self.wait_listening():
                return
            self.stop()
            if "Address already in use" not in open(self.log_path).read():
                raise RuntimeError(f"allot serve did not start:\n{open(self.log_path).read()[-3000:]}")
        raise RuntimeError("no free port for allot serve")

    def wait_listening(self):
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.2)
        return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def port_free(port):
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def api(server, path, token, version=None, accept="application/json", method="GET"):
    request = urllib.request.Request(server.url + path, method=method)
    if token:
        request.add_header("X-Auth-Token", token)
    if accept:
        request.add_header("Accept", accept)
    if version:
        request.add_header("OpenStack-API-Version", f"placement {version}")
    try:
        with OPENER.open(request, timeout=30) as answer:
            body = answer.read()
            return answer.status, dict(answer.headers), body
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def api_json(server, path, token, version=None):
    status, _, body = api(server, path, token, version)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
    return json.loads(body)


def cli(server, token, *args):
    command = [server.binary, *args, "--url", server.url, "--token", token, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def wait_for_nodes(server, token, count):
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if api_json(server, "/compute/v1/nodes?limit=1", token).get("total") == count:
                return
        except (RuntimeError, OSError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server did not register {count} nodes")


def seed(server, token):
    """Instances on a few nodes (one pinned with a VF), all active, and a resize in flight."""
    pinned = cli(server, token, "claim", "build", "--node", node_uuid(4), "--vcpus", "2", "--memory-mb", "2048",
                 "--root-gb", "20", "--extra-spec", "hw:cpu_policy=dedicated",
                 "--extra-spec", "pci_passthrough:alias=vf:1")["instance"]["uuid"]
    moving = cli(server, token, "claim", "build", "--node", node_uuid(4), "--vcpus", "2", "--memory-mb", "4096",
                 "--root-gb", "40")["instance"]["uuid"]
    others = []
    for index in range(5, 25):
        others.append(cli(server, token, "claim", "build", "--node", node_uuid(index), "--vcpus", str(index % 3 + 1),
                          "--memory-mb", str(1024 * (index % 5 + 1)), "--root-gb", "10")["instance"]["uuid"])
    for instance in [pinned, moving] + others[:10]:
        cli(server, token, "claim", "state", instance, "--vm-state", "active")
    migration = cli(server, token, "claim", "resize", moving, "--dest-node", node_uuid(8), "--vcpus", "3",
                    "--memory-mb", "6144")["migration"]["uuid"]
    return {"pinned": pinned, "moving": moving, "migration": migration}


# MARK: Chromium over the DevTools pipe


class Browser:
    def __init__(self, executable, directory):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=directory)
        commands_read, self.commands = os.pipe()
        self.replies, replies_write = os.pipe()

        def wire():
            # The DevTools pipe: the browser reads commands on fd 3 and writes answers on fd 4.
            a, b = os.dup(commands_read), os.dup(replies_write)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.log_path = os.path.join(directory, "chromium.log")
        self.process = subprocess.Popen(
            [executable, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={self.profile}", "--window-size=1280,860", "--hide-scrollbars", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
            preexec_fn=wire, close_fds=False)
        os.close(commands_read)
        os.close(replies_write)
        self.next_id = 0
        self.answers = {}
        self.events = []
        self.condition = threading.Condition()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()
        self.session = None

    def read(self):
        buffer = b""
        while True:
            try:
                chunk = os.read(self.replies, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self.condition:
                    self.condition.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                data = json.loads(message)
                with self.condition:
                    if "id" in data:
                        self.answers[data["id"]] = data
                    else:
                        self.events.append(data)
                    self.condition.notify_all()

    def call(self, method, params=None, session=True, timeout=60):
        with self.condition:
            self.next_id += 1
            number = self.next_id
        message = {"id": number, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        with self.condition:
            while number not in self.answers:
                left = deadline - time.time()
                if left <= 0 or self.process.poll() is not None:
                    raise RuntimeError(f"no answer to {method}")
                self.condition.wait(left)
            answer = self.answers.pop(number)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def open_tab(self):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ["Page.enable", "Runtime.enable", "Log.enable", "Performance.enable"]:
            self.call(domain)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": False})
        return target

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluation failed: {result['exceptionDetails'].get('text')} "
                               f"{json.dumps(result['exceptionDetails'].get('exception', {}))[:300]}")
        return result["result"].get("value")

    def wait(self, expression, timeout=20, interval=0.05):
        deadline = time.time() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.time() > deadline:
                return value
            time.sleep(interval)

    def problems(self, since=0):
        """Console errors, uncaught exceptions, failed loads, CSP violations and dialogs since event `since`."""
        found = []
        with self.condition:
            events = self.events[since:]
        for event in events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append("exception: " + details.get("text", "") + " "
                             + str(details.get("exception", {}).get("description", ""))[:300])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console." + params["type"] + ": "
                             + " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"]))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                found.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
            elif method == "Page.javascriptDialogOpening":
                found.append("dialog opened: " + params.get("message", ""))
        return found

    def status_line(self):
        """What the console's status line says (it shows failures the page caught itself)."""
        try:
            return (self.evaluate("document.querySelector('#status')?.textContent || ''") or "").strip()
        except RuntimeError:
            return ""

    def mark(self):
        with self.condition:
            return len(self.events)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=10)
        except (RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# MARK: the checks


def ready(page):
    return f"document.body && document.body.dataset.page === {json.dumps(page)} && document.body.dataset.ready === '1'"


STATUS_PROBLEMS = []


def go(browser, url_or_hash, page, timeout=30):
    if url_or_hash.startswith("#"):
        browser.evaluate(f"location.hash = {json.dumps(url_or_hash)}")
    else:
        browser.call("Page.navigate", {"url": url_or_hash})
    shown = browser.wait(ready(page), timeout=timeout)
    status = browser.status_line()
    if status and page != "login":
        STATUS_PROBLEMS.append(f"{page}: status line says {status!r}")
    return shown


FLEET_ROWS = """(() => [...document.querySelectorAll('#fleet-list .node-row')].map(row => ({
  uuid: row.dataset.uuid, hostname: row.dataset.hostname, text: row.textContent, state: row.dataset.state,
  instances: Number(row.dataset.instances), top: row.getBoundingClientRect().top,
  bars: Object.fromEntries([...row.querySelectorAll('.bar')].map(bar => [bar.dataset.rc, {
    used: Number(bar.dataset.used), reserved: Number(bar.dataset.reserved), total: Number(bar.dataset.total),
    capacity: Number(bar.dataset.capacity), ratio: Number(bar.dataset.ratio)}]))})))()"""


def capacity(inventory):
    return int((inventory["total"] - inventory["reserved"]) * inventory["allocation_ratio"])


def compare_rows(rows, nodes):
    """Differences between fleet rows and the API's nodes, by uuid."""
    by_uuid = {node["uuid"]: node for node in nodes}
    problems = []
    for row in rows:
        node = by_uuid.get(row["uuid"])
        if node is None:
            problems.append(f"row {row['uuid']} is not among the API's nodes")
            continue
        if row["hostname"] != node["hostname"]:
            problems.append(f"{row['uuid']}: hostname {row['hostname']!r} != {node['hostname']!r}")
        if row["state"] != ("disabled" if node["disabled"] else "enabled"):
            problems.append(f"{node['hostname']}: state {row['state']}")
        if row["instances"] != node["stats"].get("num_instances", 0):
            problems.append(f"{node['hostname']}: instances {row['instances']} != {node['stats']}")
        for name, inventory in node["inventories"].items():
            bar = row["bars"].get(name)
            if bar is None:
                problems.append(f"{node['hostname']}: no bar for {name}")
                continue
            expected = {"used": node["usage"].get(name, 0), "reserved": inventory["reserved"],
                        "total": inventory["total"], "capacity": capacity(inventory),
                        "ratio": inventory["allocation_ratio"]}
            for key, value in expected.items():
                if abs(bar[key] - value) > 1e-9:
                    problems.append(f"{node['hostname']} {name} {key}: {bar[key]} != {value}")
    return problems


def login(browser, server, token, checks, label):
    go(browser, server.url + "/ui/", "login")
    browser.evaluate("sessionStorage.clear()")
    if not go(browser, server.url + "/ui/", "login"):
        checks.add(f"{label}: the login form shows", False, "no login page")
        return False
    browser.evaluate(f"""(() => {{ const input = document.querySelector('#login-token');
        input.value = {json.dumps(token)}; input.dispatchEvent(new Event('input', {{bubbles: true}}));
        document.querySelector('#login-form').requestSubmit(); }})()""")
    ok = browser.wait(ready("fleet"), timeout=30)
    stored = browser.evaluate("sessionStorage.getItem('allot.token')") == token
    in_url = token in browser.evaluate("location.href")
    in_local = browser.evaluate(f"Object.values(localStorage).some(v => v.includes({json.dumps(token)}))")
    return checks.add(f"{label}: logs in with the token (kept in session storage only, never in the URL)",
                      ok and stored and not in_url and not in_local,
                      f"fleet ready={bool(ok)} stored={stored} in_url={in_url} in_local={in_local}")


def check_headers(server, checks):
    status, headers, _ = api(server, "/ui/", None, accept="text/html")
    headers = {key.lower(): value for key, value in headers.items()}
    csp = headers.get("content-security-policy", "")
    checks.add("/ui/ answers with a strict CSP, nosniff and no framing",
               status == 200 and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
               and "unsafe-inline" not in csp and headers.get("x-content-type-options") == "nosniff",
               f"{status} {csp!r}")
    status, headers, _ = api(server, "/", None, accept="text/html,application/xhtml+xml,*/*;q=0.8")
    location = {key.lower(): value for key, value in headers.items()}.get("location")
    checks.add("GET / from a browser redirects to /ui/", status == 302 and location == "/ui/", f"{status} {location}")
    status, _, body = api(server, "/", None)
    checks.add("GET / from an API client is the version document",
               status == 200 and b'"versions"' in body, f"{status} {body[:80]!r}")


def check_fleet(browser, server, token, checks, shots, marker):
    ok = go(browser, "#/fleet", "fleet")
    rows = browser.evaluate(FLEET_ROWS) or []
    answer = api_json(server, "/compute/v1/nodes?limit=100&sort=hostname", token)
    visible = [row for row in rows if 0 <= row["top"] < 860]
    problems = compare_rows(rows, answer["nodes"])
    order = [row["uuid"] for row in sorted(visible, key=lambda row: row["top"])]
    expected_order = [node["uuid"] for node in answer["nodes"][:len(order)]]
    total = browser.evaluate("document.querySelector('#fleet-total')?.textContent || ''")
    checks.add("fleet: rows show what GET /compute/v1/nodes says (order, hostnames, state, instances, bars)",
               ok and len(visible) >= 5 and not problems and order == expected_order,
               f"{len(visible)} visible rows; " + "; ".join(problems[:5])
               + ("" if order == expected_order else f" order {order[:3]} != {expected_order[:3]}"))
    checks.add("fleet: the total is the API's, and the list is virtualised",
               str(answer["total"]) in total and len(rows) < answer["total"],
               f"total text {total!r}, API {answer['total']}, {len(rows)} rows in the DOM")
    xss = [row for row in rows if row["hostname"] == XSS_NAME]
    dialogs = [p for p in browser.problems(marker) if p.startswith("dialog")]
    injected = browser.evaluate("document.querySelectorAll('img[src=\"x\"], img[onerror]').length")
    checks.add("fleet: a node named <img src=x onerror=alert(1)> renders as text",
               xss and XSS_NAME in xss[0]["text"] and injected == 0 and not dialogs,
               f"row found={bool(xss)} injected img={injected} dialogs={dialogs}")
    browser.screenshot(os.path.join(shots, "fleet.png"))
    # Sort and search go to the server.
    browser.evaluate("""(() => { const s = document.querySelector('#fleet-sort');
        const option = [...s.options].find(o => o.value === '-usage:VCPU') || [...s.options].find(o => o.value.startsWith('-used'));
        s.value = option.value; s.dispatchEvent(new Event('change', {bubbles: true})); return s.value; })()""")
    chosen = browser.evaluate("document.querySelector('#fleet-sort').value")
    time.sleep(0.2)
    browser.wait(ready("fleet"), timeout=15)
    time.sleep(0.5)
    rows = browser.evaluate(FLEET_ROWS) or []
    sorted_answer = api_json(server, "/compute/v1/nodes?limit=20&sort=" + urllib.parse.quote(chosen), token)
    top_rows = [row["uuid"] for row in sorted(rows, key=lambda row: row["top"]) if row["top"] >= 0][:5]
    checks.add(f"fleet: sorting ({chosen}) shows the API's order",
               top_rows == [node["uuid"] for node in sorted_answer["nodes"][:5]],
               f"{top_rows[:2]} vs {[node['uuid'] for node in sorted_answer['nodes'][:2]]}")
    browser.evaluate("""(() => { const s = document.querySelector('#fleet-sort'); s.value = 'hostname';
        s.dispatchEvent(new Event('change', {bubbles: true}));
        const q = document.querySelector('#fleet-search'); q.value = 'cn-001';
        q.dispatchEvent(new Event('input', {bubbles: true})); })()""")
    time.sleep(0.6)
    browser.wait(ready("fleet"), timeout=15)
    time.sleep(0.5)
    rows = browser.evaluate(FLEET_ROWS) or []
    searched = api_json(server, "/compute/v1/nodes?limit=100&q=cn-001", token)
    checks.add("fleet: search shows the API's matches",
               sorted(row["uuid"] for row in rows) == sorted(node["uuid"] for node in searched["nodes"]),
               f"{len(rows)} rows, API {searched['total']}")
    browser.evaluate("""(() => { const q = document.querySelector('#fleet-search'); q.value = '';
        q.dispatchEvent(new Event('input', {bubbles: true})); })()""")
    time.sleep(0.6)
    browser.wait(ready("fleet"), timeout=15)


def check_live_claim(browser, server, token, checks):
    """A claim made through the CLI shows on the open fleet page, without a reload."""
    go(browser, "#/fleet", "fleet")
    time.sleep(0.5)
    target = node_uuid(2)
    selector = f"#fleet-list .node-row[data-uuid='{target}'] .bar[data-rc='VCPU']"
    before = browser.evaluate(f"document.querySelector(\"{selector}\")?.dataset.used")
    navigations = browser.evaluate("performance.getEntriesByType('navigation').length")
    reloaded_marker = browser.evaluate("window.__consoleCheck = 1")
    started = time.time()
    cli(server, token, "claim", "build", "--node", target, "--vcpus", "3", "--memory-mb", "1024", "--root-gb", "5")
    committed = time.time()
    expected = str(int(before or 0) + 3)
    seen = browser.wait(f"document.querySelector(\"{selector}\")?.dataset.used === '{expected}'", timeout=10,
                        interval=0.02)
    shown = time.time()
    same_document = browser.evaluate("window.__consoleCheck === 1")
    elapsed = shown - committed
    checks.add("live: a claim made through the CLI appears on the open fleet page within 2 s, without a reload",
               seen and same_document and elapsed <= 2.0 and before is not None,
               f"VCPU used {before} -> {expected} shown {elapsed:.2f} s after the CLI returned "
               f"(CLI took {committed - started:.2f} s); same document: {same_document}")
    return {"claim_to_screen_s": round(elapsed, 3)}


def check_node(browser, server, token, checks, shots, seeded):
    uuid4 = node_uuid(4)
    ok = go(browser, f"#/node/{uuid4}", "node")
    node = api_json(server, f"/compute/v1/nodes/{uuid4}", token)
    pinned = sorted({cpu for claim in node["host_claims"].values() if claim.get("numa")
                     for cell in claim["numa"]["cells"] for cpu in cell["pinning"].values()})
    cpus = browser.evaluate("[...document.querySelectorAll('#node-numa .cpu')].map(c => [Number(c.dataset.cpu), c.dataset.state])") or []
    shown_pinned = sorted(cpu for cpu, state in cpus if state == "pinned")
    all_cpus = sorted(cpu for cell in node["topology"]["numa_cells"] for cpu in cell["cpus"])
    dedicated = set(node.get("cpu_dedicated_set") or [])
    wrong_free = [cpu for cpu, state in cpus if cpu not in pinned
                  and state != ("dedicated" if cpu in dedicated else "shared")]
    checks.add("node: NUMA cells show every CPU, the pinned ones as the API's host claims say",
               ok and sorted(cpu for cpu, _ in cpus) == all_cpus and shown_pinned == pinned and pinned
               and not wrong_free, f"pinned API {pinned} shown {shown_pinned}; CPUs {len(cpus)}/{len(all_cpus)}; "
               f"wrong states {wrong_free[:4]}")
    devices = browser.evaluate("Object.fromEntries([...document.querySelectorAll('#node-pci .pci-device')].map(d => [d.dataset.address, [d.dataset.status, d.dataset.consumer || null]]))") or {}
    expected = {address: [entry["status"], entry.get("consumer")] for address, entry in node["pci_device_status"].items()}
    nested = browser.evaluate("[...document.querySelectorAll('#node-pci .pci-device')].filter(d => d.parentElement.closest('.pci-device')).length")
    checks.add("node: PCI devices as a PF -> VF tree with the API's status and holder",
               devices == expected and nested == 4, f"shown {devices} expected {expected}; VFs under a PF: {nested}")
    instances = api_json(server, f"/compute/v1/instances?node={uuid4}", token)["instances"]
    shown = browser.evaluate("[...document.querySelectorAll('#node-instances [data-instance-uuid]')].map(r => r.dataset.instanceUuid)") or []
    moves = browser.evaluate("[...document.querySelectorAll('#node-moves [data-migration-uuid]')].map(r => r.dataset.migrationUuid)") or []
    checks.add("node: its instances and moves are the API's",
               sorted(shown) == sorted(i["uuid"] for i in instances) and seeded["migration"] in moves,
               f"instances {len(shown)}/{len(instances)}, moves {moves}")
    tree = api_json(server, f"/resource_providers?in_tree={uuid4}", token, "1.39")["resource_providers"]
    browser.wait("document.querySelectorAll('#node-providers .provider').length > 0", timeout=10)
    providers = browser.evaluate("[...document.querySelectorAll('#node-providers .provider')].map(p => p.dataset.providerUuid)") or []
    traits = api_json(server, f"/resource_providers/{uuid4}/traits", token, "1.39")["traits"]
    text = browser.evaluate("document.querySelector('#node-providers')?.textContent || ''")
    checks.add("node: the Placement provider tree with its inventories and traits",
               sorted(providers) == sorted(p["uuid"] for p in tree) and all(t in text for t in traits)
               and "MEMORY_MB" in text, f"providers {providers} vs {[p['uuid'] for p in tree]}; traits {traits}")
    browser.screenshot(os.path.join(shots, "node.png"))


def check_instances(browser, server, token, checks, shots, seeded):
    ok = go(browser, "#/instances", "instances")
    instances = api_json(server, "/compute/v1/instances", token)["instances"]
    rows = browser.evaluate("[...document.querySelectorAll('#instances-list .instance-row')].map(r => [r.dataset.instanceUuid, r.dataset.vmState])") or []
    expected = sorted([i["uuid"], i["vm_state"]] for i in instances)
    migrations = api_json(server, "/compute/v1/migrations", token)["migrations"]
    moves = browser.evaluate("[...document.querySelectorAll('#moves-list .move-row')].map(r => [r.dataset.migrationUuid, r.dataset.status, r.dataset.kind])") or []
    timeline = browser.evaluate("document.querySelectorAll('#moves-timeline svg').length + document.querySelectorAll('svg#moves-timeline').length")
    checks.add("instances: every instance with its state, as the API lists them",
               ok and sorted(rows) == expected, f"{len(rows)} rows, API {len(expected)}")
    checks.add("moves: the resize in flight with its status and kind, and a timeline",
               sorted(moves) == sorted([m["uuid"], m["status"], m["kind"]] for m in migrations)
               and any(m[0] == seeded["migration"] for m in moves) and timeline > 0, f"{moves} timeline={timeline}")
    browser.screenshot(os.path.join(shots, "instances.png"))


def check_fit(browser, server, token, checks, shots):
    ok = go(browser, "#/fit", "fit")
    query = "resources=VCPU:4,MEMORY_MB:60000&required=CUSTOM_GPU_READY"
    browser.evaluate(f"""(() => {{ const raw = document.querySelector('#fit-raw'); raw.value = {json.dumps(query)};
        raw.dispatchEvent(new Event('input', {{bubbles: true}}));
        document.querySelector('#fit-form').requestSubmit(); }})()""")
    time.sleep(0.3)
    browser.wait(ready("fit") + " && document.querySelectorAll('.fit-row').length > 0", timeout=30)
    answer = api_json(server, "/compute/v1/fit?" + query, token, "1.39")
    rows = browser.evaluate("[...document.querySelectorAll('.fit-row')].map(r => [r.dataset.uuid, r.dataset.fits, [...r.querySelectorAll('.reason')].map(x => x.dataset.kind).sort()])") or []
    expected = sorted([p["uuid"], "true", []] for p in answer["fitting"]) + sorted(
        [p["uuid"], "false", sorted(r["kind"] for r in p["reasons"])] for p in answer["excluded"])
    checks.add("fit: the page shows which trees fit and every left-out tree's reasons, as GET /compute/v1/fit says",
               ok and sorted(rows) == sorted(expected) and answer["fitting"] and answer["excluded"],
               f"{len(rows)} rows, API {len(answer['fitting'])} fit / {len(answer['excluded'])} left out")
    browser.screenshot(os.path.join(shots, "fit.png"))


def check_live_page(browser, server, token, checks, shots):
    ok = go(browser, "#/live", "live")
    browser.wait("document.querySelectorAll('#live-events .event').length > 0", timeout=10)
    events = browser.evaluate("[...document.querySelectorAll('#live-events .event')].map(e => e.dataset.type)") or []
    # Claims and an audit while the page polls /metrics (every 2 s), for the charts to have something to show.
    for index in range(30, 42):
        cli(server, token, "claim", "build", "--node", node_uuid(index), "--vcpus", "1", "--memory-mb", "512",
            "--root-gb", "1")
        time.sleep(0.4)
    cli(server, token, "audit")
    time.sleep(4.5)
    charts = browser.evaluate("['#chart-claims', '#chart-latency', '#chart-audit'].map(id => !!document.querySelector(id + ' svg, svg' + id))")
    latency_points = browser.evaluate("Number(document.querySelector('#chart-latency')?.dataset.points || 0)")
    checks.add("live: the event log (claims, audits) and the charts from /metrics",
               ok and "claim.build" in events and charts == [True, True, True] and latency_points > 0,
               f"{len(events)} events, charts {charts}, latency points {latency_points}")
    browser.screenshot(os.path.join(shots, "live.png"))


def check_reader(browser, server, reader, checks, shots):
    if not login(browser, server, reader, checks, "reader"):
        return
    rows = browser.evaluate(FLEET_ROWS) or []
    ok = go(browser, f"#/node/{node_uuid(4)}", "node")
    checks.add("reader: sees the fleet and a node", len(rows) > 0 and ok, f"{len(rows)} rows")
    browser.screenshot(os.path.join(shots, "node-reader.png"))


def check_big(browser, binary, directory, count, checks, shots):
    fleet = os.path.join(directory, "fleet-big.json")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "console-fleet.py"), "--nodes", str(count),
                    "--out", fleet], check=True)
    big_dir = os.path.join(directory, "big")
    os.makedirs(big_dir)
    started = time.time()
    server = Server(binary, big_dir, fleet, "noauth", 18950)
    try:
        wait_for_nodes(server, "admin", count)
        log(f"{count} nodes registered in {time.time() - started:.1f} s")
        marker = browser.mark()
        go(browser, server.url + "/ui/#/fleet", "fleet", timeout=60)
        timing = browser.evaluate("""(() => { const nav = performance.getEntriesByType('navigation')[0];
            const ready = performance.getEntriesByName('allot:ready:fleet')[0];
            return {dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd,
                    ready_ms: ready ? ready.startTime : null,
                    rows_in_dom: document.querySelectorAll('#fleet-list .node-row').length,
                    dom_nodes: document.getElementsByTagName('*').length}; })()""")
        metrics = {m["name"]: m["value"] for m in browser.call("Performance.getMetrics")["metrics"]}
        timing["script_s"] = round(metrics.get("ScriptDuration", 0), 3)
        timing["layout_s"] = round(metrics.get("LayoutDuration", 0), 3)
        # Scrolling to the middle asks the server for that page only.
        scroll_started = time.time()
        browser.evaluate("(() => { const l = document.querySelector('#fleet-list'); l.scrollTop = l.scrollHeight / 2; })()")
        middle = browser.wait(f"[...document.querySelectorAll('#fleet-list .node-row')].some(r => /cn-{count // 2 // 100:02d}/.test(r.dataset.hostname))", timeout=20, interval=0.02)
        timing["scroll_to_middle_ms"] = round((time.time() - scroll_started) * 1000) if middle else None
        problems = browser.problems(marker)
        browser.screenshot(os.path.join(shots, "fleet-5000.png"))
        checks.add(f"fleet of {count}: loads with no console error, a few rows in the DOM, the middle on scroll",
                   not problems and timing["rows_in_dom"] < 200 and middle, json.dumps(timing) + " " + "; ".join(problems[:3]))
        return timing
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allot", default=os.path.join(ROOT, ".build", "debug", "allot"), help="the allot binary")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser")
                        or shutil.which("google-chrome"), help="the browser (default: chromium on PATH)")
    parser.add_argument("--out", default=None, help="directory for screenshots and the report (default: a temporary one)")
    parser.add_argument("--nodes", type=int, default=200, help="nodes of the checked fleet (default 200)")
    parser.add_argument("--big-nodes", type=int, default=5000, help="nodes of the timed fleet (0: skip; default 5000)")
    args = parser.parse_args()
    if not args.chromium:
        sys.exit("console-check: no chromium found (apt-get install chromium)")
    if not os.access(args.allot, os.X_OK):
        sys.exit(f"console-check: {args.allot} is not an executable (swift build first)")
    out = args.out or tempfile.mkdtemp(prefix="console-check-")
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="console-check-work-")
    checks = Checks()
    report = {"screenshots": out}
    server = browser = None
    try:
        fleet = os.path.join(work, "fleet.json")
        document = json.loads(subprocess.check_output(
            [sys.executable, os.path.join(ROOT, "scripts", "console-fleet.py"), "--nodes", str(args.nodes)]))
        document["nodes"][-1]["hostname"] = XSS_NAME
        with open(fleet, "w") as handle:
            json.dump(document, handle)
        database = os.path.join(work, "allot.sqlite")
        admin = subprocess.run([args.allot, "token", "create", "--database", database, "--role", "admin",
                                "--name", "console-admin"], capture_output=True, text=True, check=True).stdout.strip()
        reader = subprocess.run([args.allot, "token", "create", "--database", database, "--role", "reader",
                                 "--name", "console-reader"], capture_output=True, text=True, check=True).stdout.strip()
        server = Server(args.allot, work, fleet, "token", 18900)
        log(f"allot serve on {server.url}")
        wait_for_nodes(server, admin, args.nodes)
        seeded = seed(server, admin)
        check_headers(server, checks)
        browser = Browser(args.chromium, work)
        browser.open_tab()
        marker = browser.mark()
        if login(browser, server, admin, checks, "admin"):
            time.sleep(0.3)
            check_fleet(browser, server, admin, checks, out, marker)
            report.update(check_live_claim(browser, server, admin, checks))
            check_node(browser, server, admin, checks, out, seeded)
            check_instances(browser, server, admin, checks, out, seeded)
            check_fit(browser, server, admin, checks, out)
            check_live_page(browser, server, admin, checks, out)
            problems = browser.problems(marker) + STATUS_PROBLEMS
            checks.add("admin: no console error, failed load, CSP violation, dialog or failure on the status line "
                       "on any page", not problems,
                       "; ".join(problems[:5]))
            marker = browser.mark()
            check_reader(browser, server, reader, checks, out)
            problems = [p for p in browser.problems(marker) if "403" not in p]
            checks.add("reader: no console error on its pages (a 403 the page explains aside)", not problems,
                       "; ".join(problems[:5]))
        if args.big_nodes > 0:
            report["big_fleet"] = check_big(browser, args.allot, work, args.big_nodes, checks, out)
    except Exception as error:  # a broken run is a failed check with its reason, never a silent pass
        checks.add("the run completed", False, f"{type(error).__name__}: {error}")
    finally:
        if browser:
            browser.close()
        if server:
            server.stop()
        if checks.failed:  # keep the servers' and the browser's logs for whoever reads the failure
            for name in os.listdir(work):
                if name.endswith(".log"):
                    shutil.copy(os.path.join(work, name), out)
            big = os.path.join(work, "big")
            for name in os.listdir(big) if os.path.isdir(big) else []:
                if name.endswith(".log"):
                    shutil.copy(os.path.join(big, name), os.path.join(out, "big-" + name))
        shutil.rmtree(work, ignore_errors=True)
    report["checks"] = checks.items
    with open(os.path.join(out, "report.json"), "w") as handle:
        json.dump(report, handle, indent=1)
    print(json.dumps({key: value for key, value in report.items() if key != "checks"}))
    print(f"console-check: {len(checks.items)} checks, {len(checks.failed)} failed")
    sys.exit(1 if checks.failed else 0)


if __name__ == "__main__":
    main()
