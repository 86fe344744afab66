#!/usr/bin/env python3
"""Random differential test of two Placement servers (A: the reference, upstream Placement; B: Allot).

    differential.py --a URL --b URL --seed N --steps K [--verbose]
    differential.py --a URL --b URL --random-seed --steps K

Generates a seeded random sequence of valid and invalid Placement calls (every endpoint, microversions 1.0-1.39),
sends each to A and then to B, and compares the status code, the error `code`, the JSON body (normalised only for
what is legitimately free: request ids, Last-Modified values, the order of lists whose order upstream leaves
undefined) and the presence of the headers Last-Modified, Vary, Location, Cache-Control. Error `title`/`detail`
texts are compared too, but text-only differences are reported separately. The sequence is driven by A's answers
only (uuids that exist on A, generations A reported), so one seed sends the same calls to both servers.

The one allowed difference: A answers 500 where B answers 4xx (counted and listed, not a failure).
Both servers must use noauth-style tokens (`X-Auth-Token: admin` = admin role; `X-Roles` overrides the roles) and
fresh databases. The last line printed is `N passed, N failed`; the exit status is 1 on any divergence.
"""
import argparse
import json
import random
import re
import sys
import uuid

import requests

LATEST = 39
STANDARD_CLASSES = ["VCPU", "MEMORY_MB", "DISK_GB", "SRIOV_NET_VF", "IPV4_ADDRESS", "PCI_DEVICE"]
STANDARD_TRAITS = ["HW_CPU_X86_AVX", "HW_CPU_X86_SSE", "HW_CPU_X86_AVX2", "COMPUTE_VOLUME_MULTI_ATTACH",
                   "STORAGE_DISK_SSD", "HW_NIC_OFFLOAD_TSO"]
HEADERS_PRESENCE = ["last-modified", "vary", "location", "cache-control"]
REQ_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Lists whose order upstream does not define (sorted before comparing).
UNORDERED_KEYS = {"resource_providers", "traits", "aggregates", "allocation_requests", "resource_classes",
                  "required", "forbidden"}


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
KNOWN_UUIDS = set()   # uuids the sequence made up (others in error texts are a server's own random ones)


TIMESTAMP_RE = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?")


def free_uuids(text):
    """An error text without what is free in it: server-made uuids, timestamps, and the schema and instance that
    jsonschema prints after its message ("Failed validating ... in schema: {...}", Python reprs)."""
    if not isinstance(text, str):
        return text
    text = text.split("Failed validating")[0].rstrip()
    # Upstream picks the unknown trait it names from a Python set of strings, whose order changes with every
    # process (hash randomisation): the name is not comparable.
    text = re.sub(r"(No such trait\(s\): |No such trait )[A-Za-z0-9_, ]+", r"\1<traits>", text)
    # Likewise the same_subtree suffixes not found (from a set of strings).
    text = re.sub(r"(should be specified in `same_subtree`: \[)([^\]]*)(\])",
                  lambda m: m.group(1) + ", ".join(sorted(m.group(2).split(", "))) + m.group(3), text)
    # Likewise the resourceless suffixes refused (a set of strings).
    text = re.sub(r"(bad group\(s\) - \[)([^\]]*)(\])",
                  lambda m: m.group(1) + ", ".join(sorted(m.group(2).split(", "))) + m.group(3), text)
    # Likewise the providers missing inventory (a set of uuid strings).
    text = re.sub(r"(on resource provider ')([0-9a-f, -]+)(' invalid)",
                  lambda m: m.group(1) + ", ".join(sorted(m.group(2).split(", "))) + m.group(3), text)
    text = TIMESTAMP_RE.sub("<time>", text)
    return UUID_RE.sub(lambda m: m.group(0) if m.group(0) in KNOWN_UUIDS else "<uuid>", text)


class Raw:
    """A JSON number written verbatim (2147483648, 1e29, 1.5 ...)."""

    def __init__(self, text):
        self.text = text


def dumps(obj):
    raws = {}

    def conv(o):
        if isinstance(o, Raw):
            key = "__raw_%d__" % len(raws)
            raws[key] = o.text
            return key
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        if isinstance(o, list):
            return [conv(v) for v in o]
        return o

    text = json.dumps(conv(obj))
    for key, value in raws.items():
        text = text.replace('"%s"' % key, value)
    return text


class Req:
    def __init__(self, method, path, version=LATEST, body=None, raw=None, content_type="application/json",
                 token="admin", roles=None, version_header=None, extra_headers=None):
        # A call whose answer depends on the policy (a caller other than plain admin, or a reshape without the
        # service role): its divergences are listed apart unless --strict-policy.
        self.policy = token not in ("admin", None) or (roles is not None and roles != "admin,service") or (
            path.startswith("/reshaper") and roles != "admin,service")
        self.method = method
        self.path = path
        self.version = version
        self.data = raw if raw is not None else (dumps(body) if body is not None else None)
        self.content_type = content_type if self.data is not None else None
        self.headers = {}
        if token is not None:
            self.headers["X-Auth-Token"] = token
        if roles is not None:
            self.headers["X-Roles"] = roles
        if version_header is not None:
            self.headers["OpenStack-API-Version"] = version_header
        elif version is not None:
            self.headers["OpenStack-API-Version"] = "placement 1.%d" % version
        if self.content_type:
            self.headers["Content-Type"] = self.content_type
        self.headers.update(extra_headers or {})

    def describe(self):
        text = "%s %s %s" % (self.method, self.path, self.headers.get("OpenStack-API-Version", "(no version)"))
        extra = {k: v for k, v in self.headers.items() if k not in ("OpenStack-API-Version", "Content-Type")
                 and not (k == "X-Auth-Token" and v == "admin")}
        if extra:
            text += " " + json.dumps(extra)
        if self.data is not None:
            body = self.data if isinstance(self.data, str) else self.data.decode("utf-8", "replace")
            text += "\n      body (%s): %s" % (self.content_type, body[:1500])
        return text


class Answer:
    def __init__(self, response, alias=None):
        """`alias` maps B's uuids to A's in the answer."""
        self.response = response
        self.status = response.status_code
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        self.text = response.text
        for ub, ua in (alias or {}).items():
            self.text = self.text.replace(ub, ua)
            if "location" in self.headers:
                self.headers["location"] = self.headers["location"].replace(ub, ua)
        try:
            self.json = json.loads(self.text) if response.content else None
        except ValueError:
            self.json = None

    @property
    def ok(self):
        return 200 <= self.status < 300

    def error_code(self):
        if isinstance(self.json, dict) and isinstance(self.json.get("errors"), list) and self.json["errors"]:
            first = self.json["errors"][0]
            if isinstance(first, dict):
                return first.get("code")
        return None

    def describe(self):
        hdrs = {k: self.headers[k] for k in HEADERS_PRESENCE + ["allow", "content-type"] if k in self.headers}
        return "%d %s %s" % (self.status, json.dumps(hdrs), self.text[:2000])


def canonical(value, key=None):
    if isinstance(value, dict) and key == "mappings":
        # Upstream fills each suffix's providers from a set.
        return {k: sorted(v, key=str) if isinstance(v, list) else v for k, v in value.items()}
    if isinstance(value, dict):
        return {k: canonical(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        if key in UNORDERED_KEYS or key == "allocations" or key is None and False:
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return items
    return value


def normalise(answer, req):
    """(body without error texts, error texts) of an answer, normalised."""
    if answer.json is None:
        return REQ_ID.sub("req-X", answer.text), None
    body = canonical(answer.json)
    texts = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        texts = []
        for error in body["errors"]:
            if isinstance(error, dict):
                error.pop("request_id", None)
                texts.append((error.pop("title", None), free_uuids(error.pop("detail", None))))
    if isinstance(body, dict) and "allocation_requests" in body and "limit=" in req.path:
        # Which candidates a limit keeps is upstream's undefined order: compare how many.
        body = {"allocation_requests": len(body["allocation_requests"])}
    return body, texts


def first_differences(a, b, path="", limit=4):
    """Where two normalised bodies differ (a few paths with both values, shortened)."""
    out = []

    def short(v):
        text = json.dumps(v, sort_keys=True)
        return text if len(text) <= 300 else text[:300] + "..."

    def walk(x, y, p):
        if len(out) >= limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                if k not in x:
                    out.append("%s/%s only in B: %s" % (p, k, short(y[k])))
                elif k not in y:
                    out.append("%s/%s only in A: %s" % (p, k, short(x[k])))
                elif x[k] != y[k]:
                    walk(x[k], y[k], "%s/%s" % (p, k))
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y)):
                if u != v:
                    walk(u, v, "%s[%d]" % (p, i))
        else:
            out.append("%s: A=%s B=%s" % (p or "/", short(x), short(y)))

    walk(a, b, path)
    return out


def sqlalchemy_text(texts):
    return any(detail and "(sqlite3." in detail for _, detail in texts or [])


def prefix_until_db_error(texts, reference=None):
    """The error texts cut where upstream's (`reference`'s) quote of the database exception starts."""
    out = []
    for index, (title, detail) in enumerate(texts or []):
        ref = (reference or texts)[index][1] if reference and index < len(reference) else detail
        cut = ref.index("(sqlite3.") if ref and "(sqlite3." in ref else None
        out.append((title, detail[:cut] if cut is not None and detail else detail))
    return out


def known_candidate_defect(req, ra, rb):
    """Upstream 16.0.0's GET /allocation_candidates without group_policy but with a suffixed group shares
    AllocationRequestResource objects between candidates (research_context.copy_arr_if_needed copies only for
    group_policy=none), so amounts of a class requested by several groups pile up across candidates. Such answers
    differ only in the amounts of allocation_requests."""
    if not req.path.startswith("/allocation_candidates") or "group_policy=" in req.path:
        return False
    if not re.search(r"[?&]resources[^=&]+=", req.path) or ra.status != 200 or rb.status != 200:
        return False

    def without_amounts(body):
        if not isinstance(body, dict):
            return body
        body = json.loads(json.dumps(body))
        for areq in body.get("allocation_requests", []):
            for alloc in (areq.get("allocations") or {}).values():
                if isinstance(alloc, dict) and isinstance(alloc.get("resources"), dict):
                    alloc["resources"] = sorted(alloc["resources"])
        return canonical(body)

    return without_amounts(ra.json) == without_amounts(rb.json)


class Runner:
    def __init__(self, a, b, seed, steps, verbose, strict_policy=False):
        self.strict_policy = strict_policy
        self.policy_diffs = []
        self.known_defects = []
        self.a = a.rstrip("/")
        self.b = b.rstrip("/")
        self.rng = random.Random(seed)
        self.steps = steps
        self.verbose = verbose
        self.sa = requests.Session()
        self.sb = requests.Session()
        self.step = 0
        self.alias = {}           # A's uuid -> B's uuid of providers created without a uuid
        self.passed = 0
        self.failures = []        # (step, kind, req, a, b, why)
        self.text_diffs = []
        self.upstream_500 = []
        # Model of A's state.
        self.providers = {}       # uuid -> {"name", "parent"}
        self.generations = {}     # provider uuid -> generation
        self.inventories = {}     # provider uuid -> {rc: inventory}
        self.custom_classes = []
        self.custom_traits = []
        self.aggregates = [self.new_uuid() for _ in range(4)]
        self.consumers = [self.new_uuid() for _ in range(6)]
        self.consumer_gen = {}    # consumer -> generation (None: no consumer)
        self.projects = ["p1", "p2", "proj-3"]
        self.users = ["u1", "u2"]

    # -- helpers --------------------------------------------------------------------------------------------
    def new_uuid(self):
        value = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        KNOWN_UUIDS.add(value)
        return value

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def version(self, minimum=0):
        r = self.rng.random()
        if r < 0.55:
            return LATEST
        return self.rng.randint(minimum, LATEST)

    def provider(self, exists=0.9):
        if self.providers and self.chance(exists):
            return self.pick(list(self.providers))
        return self.pick([self.new_uuid(), "not-a-uuid", self.new_uuid().replace("-", "")])

    def classes(self):
        return STANDARD_CLASSES + self.custom_classes

    def rclass(self):
        r = self.rng.random()
        if r < 0.7:
            return self.pick(STANDARD_CLASSES[:4])
        if r < 0.9 and self.custom_classes:
            return self.pick(self.custom_classes)
        return self.pick(["CUSTOM_NOPE", "custom_lower", "NOT_CUSTOM", "CUSTOM_" + "X" * 250, "CUSTOM_Ä"])

    def trait(self):
        r = self.rng.random()
        if r < 0.55:
            return self.pick(STANDARD_TRAITS)
        if r < 0.85 and self.custom_traits:
            return self.pick(self.custom_traits)
        return self.pick(["CUSTOM_NOPE_T", "CUSTOM_lower", "NOT_A_TRAIT", "CUSTOM_" + "T" * 260])

    def amount(self, small=True):
        r = self.rng.random()
        if r < 0.85:
            return self.rng.randint(1, 4) if small else self.rng.randint(1, 4096)
        return self.pick([0, -1, Raw("2147483648"), Raw("1e29"), Raw("1.5"), "2", Raw("2147483647"), None])

    def note_generation(self, rp, answer):
        if answer.ok and isinstance(answer.json, dict) and "resource_provider_generation" in answer.json:
            self.generations[rp] = answer.json["resource_provider_generation"]

    def generation(self, rp):
        if self.chance(0.85):
            return self.generations.get(rp, 0)
        return self.pick([self.generations.get(rp, 0) + 1, -1, None, "0", 99])

    # -- sending and comparing -----------------------------------------------------------------------------
    def send(self, req):
        if self.step >= self.steps:
            raise StopIteration
        self.step += 1
        ra = self.call(self.sa, self.a, req, {})
        rb = self.call(self.sb, self.b, req, self.alias)
        if req.method == "POST" and req.path == "/resource_providers" and ra.ok and rb.ok:
            # A provider created without a uuid has its own random uuid on each server: B's is an alias of A's.
            ua, ub = self.created_uuid(ra), self.created_uuid(rb)
            if ua and ub and ua != ub:
                self.alias[ua] = ub
                rb = Answer(rb.response, {b: a for a, b in self.alias.items()})
        self.compare(req, ra, rb)
        return ra

    @staticmethod
    def created_uuid(answer):
        if isinstance(answer.json, dict) and isinstance(answer.json.get("uuid"), str):
            return answer.json["uuid"]
        return answer.headers.get("location", "").rsplit("/", 1)[-1] or None

    def call(self, session, base, req, alias):
        path, data = req.path, req.data
        for ua, ub in alias.items():
            path = path.replace(ua, ub)
            if data is not None:
                data = data.replace(ua, ub)
        prepared = requests.Request(req.method, base + path, headers=req.headers,
                                    data=data.encode("utf-8") if isinstance(data, str) else data)
        prepared = session.prepare_request(prepared)
        prepared.url = base + path   # no requoting: empty segments and odd characters go as written
        if data is None:
            prepared.headers.pop("Content-Length", None)
        try:
            response = session.send(prepared, timeout=60, allow_redirects=False)
        except requests.exceptions.ConnectionError:
            # uWSGI may drop an idle keep-alive connection just as it is reused: once more on a new connection.
            session.close()
            response = session.send(prepared, timeout=60, allow_redirects=False)
        return Answer(response, {ub: ua for ua, ub in alias.items()})

    def compare(self, req, ra, rb):
        if ra.status == 500 and 400 <= rb.status < 500:
            self.upstream_500.append((self.step, req, ra, rb))
            self.passed += 1
            return
        why = []
        if ra.status != rb.status:
            why.append("status %d != %d" % (ra.status, rb.status))
        if ra.error_code() != rb.error_code():
            why.append("code %r != %r" % (ra.error_code(), rb.error_code()))
        for header in HEADERS_PRESENCE:
            if (header in ra.headers) != (header in rb.headers):
                why.append("header %s %s in A, %s in B" % (
                    header, "present" if header in ra.headers else "absent",
                    "present" if header in rb.headers else "absent"))
        if "allow" in ra.headers and sorted(ra.headers["allow"].replace(" ", "").split(",")) != sorted(
                rb.headers.get("allow", "").replace(" ", "").split(",")):
            why.append("Allow %r != %r" % (ra.headers["allow"], rb.headers.get("allow")))
        body_a, texts_a = normalise(ra, req)
        body_b, texts_b = normalise(rb, req)
        if body_a != body_b and not why:
            why.append("body differs: " + "; ".join(first_differences(body_a, body_b)))
        if why and req.policy and not self.strict_policy:
            self.policy_diffs.append((self.step, "; ".join(why), req, ra, rb))
            self.report(self.policy_diffs[-1], "POLICY")
            self.passed += 1
        elif why and known_candidate_defect(req, ra, rb):
            self.known_defects.append((self.step, "; ".join(why), req, ra, rb))
            self.report(self.known_defects[-1], "UPSTREAM-DEFECT")
            self.passed += 1
        elif why:
            self.failures.append((self.step, "; ".join(why), req, ra, rb))
            self.report(self.failures[-1], "DIVERGENCE")
        elif texts_a != texts_b:
            if sqlalchemy_text(texts_a) and prefix_until_db_error(texts_a) == prefix_until_db_error(texts_b, texts_a):
                # Upstream quotes its database driver's exception (SQL, bound values): only what comes before it
                # is comparable.
                self.passed += 1
                return
            self.text_diffs.append((self.step, "error text differs", req, ra, rb))
            self.report(self.text_diffs[-1], "TEXT")
        else:
            self.passed += 1
            if self.verbose:
                print("step %d ok: %s -> %d" % (self.step, req.describe().split("\n")[0], ra.status))

    def report(self, entry, kind):
        step, why, req, ra, rb = entry
        print("%s at step %d: %s\n  request: %s\n  A: %s\n  B: %s" % (kind, step, why, req.describe(),
                                                                     ra.describe(), rb.describe()))
        sys.stdout.flush()

    # -- the sequence -------------------------------------------------------------------------------------
    def run(self):
        actions = [
            (10, self.create_provider), (4, self.show_provider), (6, self.list_providers),
            (5, self.update_provider), (3, self.delete_provider),
            (10, self.put_inventories), (4, self.single_inventory), (3, self.get_inventories),
            (3, self.resource_classes), (4, self.traits), (5, self.provider_traits), (4, self.aggregates_call),
            (16, self.put_allocations), (5, self.post_allocations), (3, self.delete_allocations),
            (4, self.get_allocations), (4, self.usages), (14, self.allocation_candidates), (3, self.reshape),
            (6, self.junk), (2, self.other_roles),
        ]
        total = sum(w for w, _ in actions)
        try:
            while True:
                r = self.rng.uniform(0, total)
                for weight, action in actions:
                    r -= weight
                    if r <= 0:
                        break
                action()
        except StopIteration:
            pass

    # providers
    def name(self):
        r = self.rng.random()
        if r < 0.7:
            return "rp-%d" % self.rng.randint(0, 40)
        return self.pick(["名前-%d" % self.rng.randint(0, 5), "", "x" * 201, "ünï cødé ✓", 42, None,
                          "rp/%d" % self.rng.randint(0, 3)])

    def create_provider(self):
        body = {"name": self.name()}
        if self.chance(0.6):
            body["uuid"] = self.new_uuid() if self.chance(0.9) else self.pick(["bogus", "", self.provider()])
        if self.providers and self.chance(0.4):
            body["parent_provider_uuid"] = self.provider(0.85)
        if self.chance(0.05):
            body["extra"] = 1
        if self.chance(0.05):
            del body["name"]
        version = self.version()
        a = self.send(Req("POST", "/resource_providers", version, body))
        if a.status in (200, 201):
            rp = body.get("uuid")
            if rp is None and isinstance(a.json, dict):
                rp = a.json.get("uuid")
            if rp is None:
                loc = a.headers.get("location", "")
                rp = loc.rsplit("/", 1)[-1]
            if "uuid" not in body:
                # Its uuid differs between the servers (B's is an alias of A's): later calls leave it alone, so
                # that nothing depends on how two unrelated random uuids compare.
                return
            self.providers[rp] = {"name": body["name"], "parent": body.get("parent_provider_uuid")}
            self.generations[rp] = 0
            self.inventories[rp] = {}

    def show_provider(self):
        rp = self.provider()
        a = self.send(Req("GET", "/resource_providers/" + rp, self.version()))
        self.note_generation(rp, a)
        if a.ok and isinstance(a.json, dict) and "generation" in a.json:
            self.generations[rp] = a.json["generation"]

    def member_of_value(self):
        aggs = self.rng.sample(self.aggregates, self.rng.randint(1, 3))
        r = self.rng.random()
        if r < 0.4:
            return aggs[0]
        if r < 0.7:
            return "in:" + ",".join(aggs)
        if r < 0.85:
            return "!" + aggs[0]
        return self.pick(["!in:" + ",".join(aggs), "in:", "bogus", "in:" + aggs[0] + ",bad", "!" + aggs[0] + ",x"])

    def required_value(self):
        parts = []
        for _ in range(self.rng.randint(1, 3)):
            t = self.trait()
            parts.append(("!" if self.chance(0.3) else "") + t)
        if self.chance(0.2):
            return "in:" + ",".join(p.lstrip("!") for p in parts)
        if self.chance(0.05):
            return self.pick(["", "!", "in:", "in:!" + self.trait()])
        return ",".join(parts)

    def resources_value(self, allow_bad=True):
        items = []
        for rc in self.rng.sample(self.classes()[:5] + self.custom_classes, self.rng.randint(1, 3)):
            items.append("%s:%s" % (rc, self.pick([1, 1, 2, 64, 1024])))
        if allow_bad and self.chance(0.1):
            items.append(self.pick(["VCPU", "VCPU:x", "CUSTOM_NOPE:1", "VCPU:0", "VCPU:2147483648", ":1",
                                    "VCPU:-1"]))
        return ",".join(items)

    def list_providers(self):
        params = []
        if self.chance(0.2):
            params.append("name=" + str(self.name()))
        if self.chance(0.15):
            params.append("uuid=" + self.provider())
        if self.chance(0.25):
            for _ in range(self.rng.randint(1, 2)):
                params.append("member_of=" + self.member_of_value())
        if self.chance(0.3):
            params.append("resources=" + self.resources_value())
        if self.chance(0.2):
            params.append("in_tree=" + self.provider(0.8))
        if self.chance(0.25):
            params.append("required=" + self.required_value())
        if self.chance(0.05):
            params.append(self.pick(["bogus=1", "limit=1", "resources=", "member_of="]))
        a = self.send(Req("GET", "/resource_providers" + ("?" + "&".join(params) if params else ""),
                          self.version()))
        if a.ok and isinstance(a.json, dict):
            for p in a.json.get("resource_providers", []):
                if isinstance(p, dict) and "uuid" in p and p["uuid"] in self.generations:
                    self.generations[p["uuid"]] = p.get("generation", self.generations[p["uuid"]])

    def descendants(self, rp):
        out = {rp}
        changed = True
        while changed:
            changed = False
            for u, info in self.providers.items():
                if info["parent"] in out and u not in out:
                    out.add(u)
                    changed = True
        return out

    def update_provider(self):
        rp = self.provider()
        body = {"name": self.name() if self.chance(0.3) else self.providers.get(rp, {}).get("name", "x")}
        if self.chance(0.6):
            r = self.rng.random()
            if r < 0.5:
                body["parent_provider_uuid"] = self.provider(0.9)
            elif r < 0.7:
                body["parent_provider_uuid"] = None
            elif r < 0.85:
                body["parent_provider_uuid"] = self.providers.get(rp, {}).get("parent")
            else:
                desc = [u for u in self.providers if u in self.descendants(rp)] or [rp]
                body["parent_provider_uuid"] = self.pick(desc)
        if self.chance(0.05):
            body["generation"] = 1
        a = self.send(Req("PUT", "/resource_providers/" + rp, self.version(), body))
        if a.ok and rp in self.providers:
            self.providers[rp]["name"] = body["name"]
            if "parent_provider_uuid" in body:
                self.providers[rp]["parent"] = body["parent_provider_uuid"]
            if isinstance(a.json, dict) and "generation" in a.json:
                self.generations[rp] = a.json["generation"]

    def delete_provider(self):
        rp = self.provider()
        a = self.send(Req("DELETE", "/resource_providers/" + rp, self.version()))
        if a.status == 204:
            self.providers.pop(rp, None)
            self.inventories.pop(rp, None)

    # inventories
    def inventory(self):
        inv = {"total": self.pick([1, 2, 4, 8, 16, 1024, 2048])}
        for field in ("reserved", "min_unit", "max_unit", "step_size", "allocation_ratio"):
            if self.chance(0.3):
                inv[field] = {
                    "reserved": lambda: self.pick([0, 1, 2, 8]),
                    "min_unit": lambda: self.pick([1, 2]),
                    "max_unit": lambda: self.pick([1, 2, 4, 16, 2048]),
                    "step_size": lambda: self.pick([1, 2]),
                    "allocation_ratio": lambda: self.pick([1.0, 0.5, 2, 16.0]),
                }[field]()
        if self.chance(0.08):
            inv[self.pick(["total", "reserved", "max_unit", "step_size", "allocation_ratio", "bogus"])] = \
                self.pick([0, -1, Raw("2147483648"), Raw("1e29"), "8", None, Raw("1.5")])
        return inv

    def put_inventories(self):
        rp = self.provider()
        invs = {}
        current = self.inventories.get(rp, {})
        for rc in self.rng.sample(STANDARD_CLASSES[:4] + self.custom_classes, self.rng.randint(0, 3)):
            invs[rc] = self.inventory()
        if current and self.chance(0.5):
            # Keep (or lower) what is there, to make over-capacity and in-use situations.
            for rc, inv in current.items():
                if self.chance(0.7):
                    new = dict(inv)
                    if self.chance(0.5):
                        new["total"] = max(1, int(inv.get("total", 1)) - self.rng.randint(0, 3))
                    invs[rc] = new
        if self.chance(0.05):
            invs[self.rclass()] = self.inventory()
        body = {"inventories": invs, "resource_provider_generation": self.generation(rp)}
        if self.chance(0.03):
            body = self.pick([{"inventories": invs}, {"resource_provider_generation": 0}, [], {"inventories": []}])
        a = self.send(Req("PUT", "/resource_providers/%s/inventories" % rp, self.version(), body))
        self.note_generation(rp, a)
        if a.ok and isinstance(a.json, dict):
            self.inventories[rp] = a.json.get("inventories", {})

    def get_inventories(self):
        rp = self.provider()
        a = self.send(Req("GET", "/resource_providers/%s/inventories" % rp, self.version()))
        self.note_generation(rp, a)
        if a.ok and isinstance(a.json, dict):
            self.inventories[rp] = a.json.get("inventories", {})

    def single_inventory(self):
        rp = self.provider()
        rc = self.pick(list(self.inventories.get(rp, {})) or ["VCPU"]) if self.chance(0.7) else self.rclass()
        op = self.rng.random()
        version = self.version()
        path = "/resource_providers/%s/inventories" % rp
        if op < 0.25:
            a = self.send(Req("GET", path + "/" + rc, version))
        elif op < 0.45:
            body = dict(self.inventory(), resource_provider_generation=self.generation(rp))
            a = self.send(Req("PUT", path + "/" + rc, version, body))
        elif op < 0.6:
            body = dict(self.inventory(), resource_class=rc, resource_provider_generation=self.generation(rp))
            a = self.send(Req("POST", path, version, body))
        elif op < 0.8:
            a = self.send(Req("DELETE", path + "/" + rc, version))
        else:
            a = self.send(Req("DELETE", path, version))
        self.note_generation(rp, a)
        if a.ok:
            self.get_inventories_of(rp)

    def get_inventories_of(self, rp):
        a = self.send(Req("GET", "/resource_providers/%s/inventories" % rp, LATEST))
        self.note_generation(rp, a)
        if a.ok and isinstance(a.json, dict):
            self.inventories[rp] = a.json.get("inventories", {})

    # resource classes and traits
    def resource_classes(self):
        op = self.rng.random()
        version = self.version()
        if op < 0.2:
            self.send(Req("GET", "/resource_classes", version))
        elif op < 0.5:
            name = self.pick(["CUSTOM_RC%d" % self.rng.randint(0, 6), "CUSTOM_RC%d" % self.rng.randint(0, 6),
                              self.rclass()])
            a = self.send(Req("POST", "/resource_classes", version,
                              {"name": name} if self.chance(0.95) else {"nom": name}))
            if a.status == 201 and name not in self.custom_classes:
                self.custom_classes.append(name)
        elif op < 0.7:
            name = self.pick(["CUSTOM_RC%d" % self.rng.randint(0, 6), self.rclass()])
            body = {"name": "CUSTOM_RN%d" % self.rng.randint(0, 3)} if version < 7 and self.chance(0.7) else None
            a = self.send(Req("PUT", "/resource_classes/" + name, version, body))
            if a.status in (200, 201, 204):
                if body is not None:
                    if name in self.custom_classes:
                        self.custom_classes.remove(name)
                    if body["name"] not in self.custom_classes:
                        self.custom_classes.append(body["name"])
                elif name not in self.custom_classes and name.startswith("CUSTOM_"):
                    self.custom_classes.append(name)
        elif op < 0.85:
            self.send(Req("GET", "/resource_classes/" + self.rclass(), version))
        else:
            name = self.rclass()
            a = self.send(Req("DELETE", "/resource_classes/" + name, version))
            if a.status == 204 and name in self.custom_classes:
                self.custom_classes.remove(name)

    def traits(self):
        op = self.rng.random()
        version = self.version()
        if op < 0.25:
            params = []
            if self.chance(0.4):
                params.append("name=" + self.pick([
                    "in:" + ",".join(self.trait() for _ in range(2)), "startswith:CUSTOM", "startswith:HW_CPU",
                    "bogus", "in:", "startswith:"]))
            if self.chance(0.3):
                params.append("associated=" + self.pick(["true", "false", "yes", "1"]))
            self.send(Req("GET", "/traits" + ("?" + "&".join(params) if params else ""), version))
        elif op < 0.55:
            name = self.pick(["CUSTOM_T%d" % self.rng.randint(0, 6), self.trait()])
            a = self.send(Req("PUT", "/traits/" + name, version))
            if a.status == 201 and name not in self.custom_traits:
                self.custom_traits.append(name)
        elif op < 0.75:
            self.send(Req("GET", "/traits/" + self.trait(), version))
        else:
            name = self.trait()
            a = self.send(Req("DELETE", "/traits/" + name, version))
            if a.status == 204 and name in self.custom_traits:
                self.custom_traits.remove(name)

    def provider_traits(self):
        rp = self.provider()
        op = self.rng.random()
        version = self.version()
        path = "/resource_providers/%s/traits" % rp
        if op < 0.3:
            a = self.send(Req("GET", path, version))
        elif op < 0.85:
            traits = sorted({self.trait() for _ in range(self.rng.randint(0, 3))})
            body = {"traits": traits, "resource_provider_generation": self.generation(rp)}
            if self.chance(0.05):
                body = {"traits": traits}
            a = self.send(Req("PUT", path, version, body))
        else:
            a = self.send(Req("DELETE", path, version))
        self.note_generation(rp, a)

    def aggregates_call(self):
        rp = self.provider()
        version = self.version()
        path = "/resource_providers/%s/aggregates" % rp
        if self.chance(0.35):
            a = self.send(Req("GET", path, version))
        else:
            aggs = self.rng.sample(self.aggregates, self.rng.randint(0, 3))
            if self.chance(0.05):
                aggs.append(self.pick(["bogus", aggs[0] if aggs else "x"]))
            body = aggs
            if version >= 19 or self.chance(0.1):
                body = {"aggregates": aggs, "resource_provider_generation": self.generation(rp)}
            a = self.send(Req("PUT", path, version, body))
        self.note_generation(rp, a)

    # allocations
    def consumer(self):
        if self.chance(0.9):
            return self.pick(self.consumers)
        return self.pick([self.new_uuid(), "not-a-uuid"])

    def refresh_consumer(self, consumer):
        a = self.send(Req("GET", "/allocations/" + consumer, LATEST))
        if a.ok and isinstance(a.json, dict):
            self.consumer_gen[consumer] = a.json.get("consumer_generation")
        return a

    def allocation_body(self, version, consumer_gen=None, empty=0.08):
        """Allocations in the form of `version`, over providers that (mostly) have inventory."""
        with_inv = [u for u in self.inventories if self.inventories[u]]
        allocs = {}
        if not self.chance(empty):
            for _ in range(self.rng.randint(1, 2)):
                rp = self.pick(with_inv) if with_inv and self.chance(0.9) else self.provider(0.8)
                classes = list(self.inventories.get(rp, {})) or ["VCPU"]
                res = {}
                for rc in self.rng.sample(classes, self.rng.randint(1, len(classes))):
                    res[rc] = self.amount()
                if self.chance(0.04):
                    res[self.rclass()] = 1
                if self.chance(0.02):
                    res = {}
                allocs[rp] = res
        body = {}
        if version < 12:
            body["allocations"] = [{"resource_provider": {"uuid": rp}, "resources": res} for rp, res in
                                   allocs.items()]
        else:
            body["allocations"] = {rp: {"resources": res} for rp, res in allocs.items()}
            if version < 28 and self.chance(0.1):
                for v in body["allocations"].values():
                    v["generation"] = 3
        if version >= 8 and self.chance(0.95) or version < 8 and self.chance(0.1):
            body["project_id"] = self.pick(self.projects) if self.chance(0.97) else self.pick(["", "x" * 256, 7])
            body["user_id"] = self.pick(self.users)
        if version >= 28 and self.chance(0.95) or version < 28 and self.chance(0.05):
            body["consumer_generation"] = consumer_gen
        if version >= 38 and self.chance(0.95) or version < 38 and self.chance(0.05):
            body["consumer_type"] = self.pick(["INSTANCE", "MIGRATION", "INSTANCE", "bad type", "A" * 300])
        return body

    def put_allocations(self):
        consumer = self.consumer()
        version = self.version(minimum=0)
        if version >= 28 and self.chance(0.7):
            self.refresh_consumer(consumer)
        gen = self.consumer_gen.get(consumer)
        if self.chance(0.12):
            gen = self.pick([None, 0, (gen or 0) + 1, "1"])
        body = self.allocation_body(version, gen)
        if self.chance(0.03):
            body = self.pick([{}, {"allocations": {}}, [], {"allocations": None}])
        a = self.send(Req("PUT", "/allocations/" + consumer, version, body))
        if a.status == 204:
            self.consumer_gen.pop(consumer, None)

    def post_allocations(self):
        version = self.version(minimum=12)
        body = {}
        for consumer in self.rng.sample(self.consumers, self.rng.randint(1, 3)):
            if version >= 28 and self.chance(0.5):
                self.refresh_consumer(consumer)
            body[consumer] = self.allocation_body(max(version, 12), self.consumer_gen.get(consumer), empty=0.2)
            if version >= 12 and isinstance(body[consumer].get("allocations"), list):
                body[consumer]["allocations"] = {}
        if self.chance(0.05):
            body[self.pick(["bogus", self.new_uuid()])] = {"allocations": {}}
        a = self.send(Req("POST", "/allocations", version, body))
        if a.status == 204:
            for consumer in body:
                self.consumer_gen.pop(consumer, None)

    def delete_allocations(self):
        consumer = self.consumer()
        a = self.send(Req("DELETE", "/allocations/" + consumer, self.version()))
        if a.status == 204:
            self.consumer_gen.pop(consumer, None)

    def get_allocations(self):
        if self.chance(0.5):
            self.send(Req("GET", "/allocations/" + self.consumer(), self.version()))
        else:
            self.send(Req("GET", "/resource_providers/%s/allocations" % self.provider(), self.version()))

    def usages(self):
        version = self.version()
        if self.chance(0.4):
            self.send(Req("GET", "/resource_providers/%s/usages" % self.provider(), version))
            return
        params = []
        if self.chance(0.95):
            params.append("project_id=" + self.pick(self.projects + ["nobody"]))
        if self.chance(0.4):
            params.append("user_id=" + self.pick(self.users + ["nobody"]))
        if self.chance(0.4):
            params.append("consumer_type=" + self.pick(["INSTANCE", "MIGRATION", "all", "unknown", "ALL", "bad type"]))
        if self.chance(0.03):
            params.append("bogus=1")
        self.send(Req("GET", "/usages" + ("?" + "&".join(params) if params else ""), version))

    def allocation_candidates(self):
        version = self.rng.randint(10, LATEST) if self.chance(0.4) else LATEST
        params = []
        suffixes = [""]
        if self.chance(0.5):
            suffixes += self.rng.sample(["1", "2", "_NET", "-x", "3"], self.rng.randint(1, 2))
        for s in suffixes:
            if self.chance(0.9 if s == "" else 0.8):
                params.append("resources%s=%s" % (s, self.resources_value()))
            if self.chance(0.3):
                params.append("required%s=%s" % (s, self.required_value()))
            if self.chance(0.2):
                params.append("member_of%s=%s" % (s, self.member_of_value()))
            if self.chance(0.15):
                params.append("in_tree%s=%s" % (s, self.provider(0.85)))
        if len(suffixes) > 1 and self.chance(0.5):
            params.append("group_policy=" + self.pick(["none", "isolate", "bogus"]))
        if self.chance(0.15):
            params.append("limit=" + self.pick(["1", "2", "0", "-1", "x"]))
        if self.chance(0.12):
            params.append("root_required=" + self.pick([self.trait(), "!" + self.trait(),
                                                        self.trait() + ",!" + self.trait()]))
        if len(suffixes) > 1 and self.chance(0.15):
            params.append("same_subtree=" + ",".join(self.rng.sample(suffixes[1:] + ["_Z"],
                                                                       min(2, len(suffixes)))))
        if self.chance(0.03):
            params.append(self.pick(["bogus=1", "resources=", "resources1=VCPU:1,VCPU:2", "required=!"]))
        self.rng.shuffle(params)
        self.send(Req("GET", "/allocation_candidates" + ("?" + "&".join(params) if params else ""), version))

    def reshape(self):
        version = self.pick([LATEST, LATEST, 38, 30, 29])
        rps = self.rng.sample(list(self.providers), min(len(self.providers), self.rng.randint(1, 2)))
        inventories = {}
        for rp in rps:
            self.get_inventories_of(rp)
            invs = {}
            for rc, inv in self.inventories.get(rp, {}).items():
                if self.chance(0.8):
                    invs[rc] = dict(inv)
            if self.chance(0.4):
                invs[self.pick(STANDARD_CLASSES[:4] + self.custom_classes)] = self.inventory()
            inventories[rp] = {"resource_provider_generation": self.generation(rp), "inventories": invs}
        allocations = {}
        for consumer in self.rng.sample(self.consumers, self.rng.randint(0, 2)):
            self.refresh_consumer(consumer)
            body = self.allocation_body(max(version, 28), self.consumer_gen.get(consumer), empty=0.15)
            body.setdefault("project_id", "p1")
            body.setdefault("user_id", "u1")
            if version >= 38:
                body.setdefault("consumer_type", "INSTANCE")
            else:
                body.pop("consumer_type", None)
            allocations[consumer] = body
        body = {"inventories": inventories, "allocations": allocations}
        if self.chance(0.05):
            body = self.pick([{"inventories": inventories}, {}, {"allocations": {}, "inventories": {}}])
        roles = "admin,service" if self.chance(0.9) else self.pick(["admin", "service", "reader"])
        if roles != "admin,service":
            # Probes the policy only: a body that changes nothing even where the caller is let through, so that a
            # policy divergence does not make the servers' states drift apart.
            body = {"inventories": {}, "allocations": {}}
        self.send(Req("POST", "/reshaper", version, body, roles=roles))
        for rp in rps:
            self.generations.pop(rp, None)
            self.get_inventories_of(rp)

    # invalid requests
    def junk(self):
        rp = self.provider()
        c = self.consumer()
        choice = self.rng.randrange(16)
        if choice == 0:
            self.send(Req("PUT", "/resource_providers/%s/inventories" % rp, self.version(), raw="{not json"))
        elif choice == 1:
            self.send(Req("POST", "/resource_providers", self.version(), raw='{"name": "nct"}', content_type=None))
            self.data_without_ct()
        elif choice == 2:
            self.send(Req("PUT", "/allocations/" + c, self.version(), raw='{"allocations": {}}',
                          content_type="text/plain"))
        elif choice == 3:
            path = self.pick(["/resource_providers/%s/inventories/" % rp, "/allocations/", "/resource_providers/",
                              "/resource_providers//inventories", "//resource_providers", "/traits/",
                              "/resource_classes/", "/resource_providers/%s/" % rp, "/usages/"])
            method = self.pick(["GET", "PUT", "DELETE", "POST"])
            self.send(Req(method, path, self.version(), {} if method in ("PUT", "POST") else None))
        elif choice == 4:
            self.send(Req(self.pick(["GET", "PATCH", "DELETE"]), self.pick(["/nope", "/resource_providers/x/nope",
                                                                          "/v1/resource_providers"]), self.version()))
        elif choice == 5:
            self.send(Req(self.pick(["PATCH", "POST", "DELETE", "PUT"]), self.pick([
                "/resource_providers/" + rp, "/allocations", "/allocations/" + c, "/usages", "/traits",
                "/allocation_candidates", "/reshaper", "/resource_classes", "/"]), self.version()))
        elif choice == 6:
            header = self.pick(["placement 1.40", "placement 2.0", "placement latest", "placement 1.", "placement x",
                                "compute 1.5", "placement 1.05", "placement 0.9", "placement  1.2", ""])
            self.send(Req("GET", self.pick(["/resource_providers", "/", "/traits"]), None, version_header=header))
        elif choice == 7:
            self.send(Req("GET", "/resource_providers", self.version(), token=None))
        elif choice == 8:
            self.send(Req("GET", self.pick(["/resource_providers", "/traits", "/usages?project_id=p1"]),
                          self.version(), extra_headers={"Accept": self.pick(["text/html", "application/json",
                                                                             "*/*", "application/xml"])}))
        elif choice == 9:
            bad = self.pick(["not-a-uuid", "1234", "%20", "x" * 40, self.new_uuid().upper()])
            path = self.pick(["/resource_providers/%s", "/resource_providers/%s/inventories",
                              "/resource_providers/%s/traits", "/resource_providers/%s/usages",
                              "/allocations/%s", "/resource_providers/%s/aggregates"]) % bad
            self.send(Req(self.pick(["GET", "GET", "DELETE"]), path, self.version()))
        elif choice == 10:
            self.send(Req("PUT", "/allocations/" + c, self.version(), raw=self.pick(
                ['{"allocations": {"%s": {"resources": {"VCPU": 1e29}}}, "project_id": "p1", "user_id": "u1", '
                 '"consumer_generation": null, "consumer_type": "INSTANCE"}' % rp, "[]", "null", '"x"', "",
                 '{"allocations": {"%s": {"resources": {"VCPU": 2147483648}}}, "project_id": "p1", "user_id": '
                 '"u1", "consumer_generation": null, "consumer_type": "INSTANCE"}' % rp])))
        elif choice == 11:
            self.send(Req("GET", "/resource_providers/%s/inventories/%s" % (rp, self.pick(["vcpu", "VCPU ", "%00"])),
                          self.version()))
        elif choice == 12:
            self.send(Req("POST", "/resource_providers", self.version(), {"name": "dup-%d" % self.rng.randint(0, 2),
                                                                          "uuid": self.provider(0.5)}))
        elif choice == 13:
            self.send(Req("PUT", "/resource_providers/%s/inventories" % rp, self.version(),
                          {"inventories": {"vcpu": self.pick([{"total": 1}, {"reserved": 0}])},
                           "resource_provider_generation": 0}))
        elif choice == 14:
            self.send(Req("GET", "/allocation_candidates?" + self.pick([
                "resources=VCPU:1&resources1=CUSTOM_NOPE:1", "resources1=CUSTOM_NOPE:1&resources=VCPU:1",
                "resources1=VCPU:1&required1=CUSTOM_NOPE", "root_required=CUSTOM_NOPE&resources=VCPU:1",
                "resources=VCPU:1&member_of=%s&member_of=%s&required=CUSTOM_NOPE" % tuple(self.aggregates[:2]),
                "resources=VCPU:1,VCPU:1", "resources=VCPU:2147483648", "resources=VCPU:1&limit=2147483648"]),
                LATEST))
        else:
            self.send(Req("GET", self.pick(["/usages?project_id=p1&consumer_type=all",
                                            "/usages?project_id=nobody&consumer_type=all",
                                            "/usages?project_id=p1&consumer_type=INSTANCE"]), LATEST))

    def data_without_ct(self):
        pass

    def other_roles(self):
        token, roles = self.pick([("user1:proj1", None), ("user1:proj1", "reader"), ("user1:proj1", "member"),
                                  ("admin", "reader"), ("svc", "service"), ("user1:p1", "reader")])
        rp = self.provider()
        path, method, body = self.pick([
            ("/resource_providers", "GET", None), ("/resource_providers/" + rp, "GET", None),
            ("/usages?project_id=p1", "GET", None), ("/usages?project_id=proj1", "GET", None),
            ("/traits", "GET", None), ("/allocations/" + self.consumer(), "GET", None),
            # (a body refused anyway: a policy divergence must not change the state of one server only)
            ("/resource_providers", "POST", {"name": "role-rp", "uuid": "not-a-uuid"}),
            ("/allocation_candidates?resources=VCPU:1", "GET",
                                                                    None)])
        self.send(Req(method, path, self.version(), body, token=token, roles=roles))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="the reference server (upstream Placement)")
    parser.add_argument("--b", required=True, help="the server under test (Allot)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--random-seed", action="store_true", help="pick a seed and print it")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--strict-policy", action="store_true",
                        help="count divergences of calls whose answer depends on the policy as failures")
    args = parser.parse_args()
    if args.random_seed:
        args.seed = random.SystemRandom().randrange(1, 10 ** 9)
    if args.seed is None:
        parser.error("--seed or --random-seed is required")
    print("seed %d, %d steps" % (args.seed, args.steps))
    runner = Runner(args.a, args.b, args.seed, args.steps, args.verbose, args.strict_policy)
    runner.run()
    print()
    print("%d upstream 500s answered 4xx by B (allowed):" % len(runner.upstream_500))
    for step, req, ra, rb in runner.upstream_500:
        print("  step %d: %s -> A %d, B %d %s" % (step, req.describe(), ra.status, rb.status, rb.error_code()))
    print("%d policy-dependent divergences (listed as POLICY, not counted%s)" % (
        len(runner.policy_diffs), "" if not args.strict_policy else "; --strict-policy counts them"))
    print("%d known upstream candidate defects (listed as UPSTREAM-DEFECT, not counted)" % len(runner.known_defects))
    print("%d error-text-only differences, %d status/code/body/header divergences" % (
        len(runner.text_diffs), len(runner.failures)))
    failed = len(runner.failures) + len(runner.text_diffs)
    print("%d passed, %d failed" % (runner.passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
