"""A hand-written fuzzer of the ComfyUI routes (and of what the OpenAPI-driven fuzzer cannot send
to the /v1 routes: invalid UTF-8, raw bytes, broken HTTP).

First a fixed corpus of adversarial requests, in an order the seed picks: invalid UTF-8 and NUL
bytes in paths, queries and headers; JSON nested 100000 deep; numbers like 1e400 and 10**400 as
literal digits; file names of 300 to 5000 characters, with '../' and invalid UTF-8 bytes, in
multipart uploads; WebSocket frames to /ws (invalid UTF-8, binary, huge, deeply nested, broken
framing); the service's own text-to-image workflow with links to missing nodes, cycles and values
of the wrong type. Then random requests of the same families until the time is up. A request may
be accepted and break a later one: right after each accepted change the routes that read what it
stored are read (so a failure there names the request before it), and every 40 cases all routes
that list stored state (/object_info, /v2/userdata, /settings, /history, /api/jobs, ...).

A 5xx answer, a crash of the service or a request without an answer in time is a failure; each
is printed with the request that reproduces it. FUZZ_SEED replays a run; FUZZ_ONLY / FUZZ_SKIP
(regular expressions over case names) narrow it.

Usage: comfy_fuzz.py --base-url URL --state STATE_JSON --seconds N [--seed N] [--pid PID]
                     [--results JSON] [--server-log FILE]"""
import copy
import json
import os
import random
import re
import socket
import struct
import time
import urllib.parse

import websocket

from fuzz_common import (REQUEST_TIMEOUT, Exchange, Recorder, ServerDown, make_png,
                         run_fuzzer_from_command_line, short_repr, text_to_image_graph)

DEEP = 100000  # nesting depth of the deep JSON bodies


# --- JSON with values Python's json module cannot write -------------------------------------

class Raw:
    """A JSON token written as is (1e400, 10**400 as digits, NaN)."""

    def __init__(self, text):
        self.text = text.encode() if isinstance(text, str) else text

    def __repr__(self):
        return f"Raw({self.text[:40]!r})"


class RawString:
    """A JSON string whose bytes are written as is (invalid UTF-8 inside a string)."""

    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return f"RawString({self.data[:40]!r})"


def dumps(value):
    """JSON text (bytes) of `value`, with Raw and RawString written as they are."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, RawString):
        return b'"' + value.data + b'"'
    if isinstance(value, dict):
        return b"{" + b",".join((k.data if isinstance(k, Raw) else json.dumps(k).encode()) + b":" + dumps(v)
                                for k, v in value.items()) + b"}"
    if isinstance(value, (list, tuple)):
        return b"[" + b",".join(dumps(v) for v in value) + b"]"
    return json.dumps(value).encode()


HUGE_NUMBERS = [Raw("1e400"), Raw("-1e400"), Raw("1" + "0" * 400), Raw("-" + "9" * 400), Raw("1e-400"),
                Raw("1.7976931348623157e309"), Raw("18446744073709551616"), Raw("-9223372036854775809"),
                Raw("123456789012345678901234567890.5e10")]
ODD_NUMBERS = [0, -1, 1, -0.0, 0.5, 2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, -(2 ** 63), 1e308]
ODD_STRINGS = ["", " ", "a", "x" * 300, "x" * 5000, "../../../../etc/passwd", "..", ".", "/", "\\", "\u0000",
               "a\u0000b", "\ud800", "\udfff", "é", "\U0001F600", "%ff", "%00", "<script>alert(1)</script>",
               "null", "true", "1e400", "\n", "\r\n", "default", "input", "output", "temp", "KSampler",
               "euler", "karras", "${jndi}", "'; drop table jobs; --", "{}", "[]"]
INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"a\x80b", b"\xe2\x82"]


def deep_bodies():
    """Bodies nested DEEP levels deep: closed arrays, closed objects, unclosed arrays."""
    return {
        "deep-array": b"[" * DEEP + b"]" * DEEP,
        "deep-object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
        "deep-unclosed": b"[" * DEEP,
        "deep-mixed": b'[{"a":' * (DEEP // 2) + b"null" + b"}]" * (DEEP // 2),
    }


def pct(data):
    """Percent-encodes every byte that is not unreserved (bytes in, bytes out)."""
    return urllib.parse.quote_from_bytes(data, safe="").encode()


# --- the routes -----------------------------------------------------------------------------

# (method, template, has an /api twin). {x} is one path segment, {x...} may hold slashes.
ROUTES = [
    ("GET", "/view", True), ("POST", "/upload/image", True), ("POST", "/upload/mask", True),
    ("GET", "/users", True), ("POST", "/users", True), ("GET", "/user.css", False),
    ("GET", "/userdata", True), ("GET", "/v2/userdata", True), ("GET", "/userdata/{file...}", True),
    ("POST", "/userdata/{file...}", True), ("DELETE", "/userdata/{file...}", True),
    ("GET", "/object_info", True), ("GET", "/object_info/{class}", True), ("GET", "/system_stats", True),
    ("GET", "/features", True), ("GET", "/embeddings", True), ("GET", "/extensions", True),
    ("GET", "/i18n", True), ("GET", "/workflow_templates", True), ("GET", "/global_subgraphs", True),
    ("GET", "/global_subgraphs/{id}", True), ("GET", "/node_replacements", True),
    ("GET", "/templates/index.json", False), ("GET", "/models", True), ("GET", "/models/{folder}", True),
    ("GET", "/experiment/models", True), ("GET", "/experiment/models/{folder}", True),
    ("GET", "/experiment/models/preview/{folder}/{path_index}/{filename...}", True),
    ("GET", "/view_metadata/{folder}", True), ("GET", "/internal/folder_paths", False),
    ("GET", "/api/jobs", False), ("GET", "/api/jobs/{job}", False),
    ("GET", "/settings", True), ("GET", "/settings/{setting}", True), ("POST", "/settings", True),
    ("POST", "/settings/{setting}", True),
    ("POST", "/prompt", True), ("GET", "/prompt", True), ("GET", "/queue", True), ("POST", "/queue", True),
    ("POST", "/interrupt", True), ("GET", "/history", True), ("GET", "/history/{prompt}", True),
    ("POST", "/history", True), ("POST", "/free", True),
    ("GET", "/internal/logs", False), ("GET", "/internal/logs/raw", False),
    ("PATCH", "/internal/logs/subscribe", False), ("GET", "/", False), ("GET", "/{static...}", False),
    ("GET", "/healthz", False), ("GET", "/readyz", False), ("GET", "/metrics", False),
    ("GET", "/v1/jobs", False), ("POST", "/v1/jobs", False), ("GET", "/v1/jobs/{job}", False),
    ("GET", "/v1/jobs/{job}/artifacts", False), ("GET", "/v1/jobs/{job}/logs", False),
    ("GET", "/v1/jobs/{job}/progress", False), ("GET", "/v1/jobs/{job}/events", False),
    ("POST", "/v1/jobs/{job}/cancel", False), ("GET", "/v1/models", False), ("GET", "/v1/models/{model}", False),
    ("GET", "/v1/files/{key...}", False),
]

QUERY_PARAMETERS = {
    "/view": ["filename", "type", "subfolder", "preview", "channel"],
    "/history": ["max_items", "offset"],
    "/api/jobs": ["status", "limit", "offset", "sort_order", "sort_by", "workflow_id"],
    "/userdata": ["dir", "recurse", "full_info", "split"],
    "/v2/userdata": ["path"],
    "/userdata/{file...}": ["overwrite", "full_info"],
    "/v1/jobs": ["status", "limit", "cursor"],
    "/v1/jobs/{job}/events": ["after"],
    "/view_metadata/{folder}": ["filename"],
    "/v1/files/{key...}": ["expires", "sig"],
}

# Already percent-encoded path segments (bytes as they go into the request target).
ODD_SEGMENTS = [b"%ff", b"%fe%ff", b"%c0%af", b"%ed%a0%80", b"%00", b"a%00b", b"..", b"%2e%2e", b".",
                b"..%2f..%2f..%2f..%2fetc%2fpasswd", b"%2f", b"%5c", b"%2e%2e%5c%2e%2e", b"a" * 300,
                b"a" * 5000, b"%c3%a9", b"%f0%9f%98%80", b"", b"%20", b"~", b"-1", b"99999999999999999999999",
                b"1e400", b"null", b"__proto__", b"con", b"%25", b"%", b"%g1", b"a%2fb", b"*", b";", b"%3b"]
ODD_QUERY_VALUES = ODD_SEGMENTS + [b"true", b"false", b"1", b"0", b"input", b"output", b"temp", b"rgb", b"a",
                                   b"webp;90", b"jpeg;1000", b"webp;" + b"9" * 30, b"1" + b"0" * 400,
                                   b"-9223372036854775809", b"asc", b"desc", b"pending,completed",
                                   b"in_progress", b"+", b"%2b", b"a+b", b"workflows", b"../..", b"/etc"]


class ComfyFuzzer:
    def __init__(self, args, state):
        self.base = args.base_url.rstrip("/")
        self.state = state
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.recorder = Recorder("comfy", self.base, args.pid, args.seed, args.seconds, args.server_log)
        self.only = re.compile(os.environ["FUZZ_ONLY"]) if os.environ.get("FUZZ_ONLY") else None
        self.skip = re.compile(os.environ["FUZZ_SKIP"]) if os.environ.get("FUZZ_SKIP") else None
        self.ckpt = state["ckpt_names"][0]
        self.graph = text_to_image_graph(self.ckpt)
        self.input_name = state["uploaded"].get("name", "fuzz-input.png")
        self.prompt_ids = list(state["prompt_ids"])
        self.ws_clients = 0
        self.cases = 0
        self.skipped = 0

    # --- sending helpers ----------------------------------------------------------------------

    def route_path(self, template, api=None):
        """`template` with /api in front half the time for routes that have the twin."""
        twin = any(t == template and has_api for _, t, has_api in ROUTES)
        if api is None:
            api = twin and self.rng.random() < 0.5
        return ("/api" + template) if api and twin else template

    def send(self, method, target, body=None, headers=None, route=None, kind="", content_type=None, **kwargs):
        all_headers = list(headers or [])
        if body is not None and content_type is not False and not any(
                name.lower() == "content-type" for name, _ in all_headers):
            all_headers.append(("Content-Type", content_type or "application/json"))
        exchange = self.recorder.send(method, target, all_headers, body, route=route, kind=kind, **kwargs)
        if method in ("POST", "PATCH", "PUT", "DELETE") and exchange.status is not None and exchange.status < 300:
            self.read_back(route or "")
        return exchange

    # What a request that changed stored state may have broken: the routes that read it back, read
    # right after it, so that a failure there names the request that caused it.
    READERS = [("/userdata", [b"/settings", b"/v2/userdata", b"/userdata?dir=workflows&full_info=true"]),
               ("/settings", [b"/settings"]),
               ("/upload", [b"/object_info/LoadImage", b"/object_info"]),
               ("/prompt", [b"/api/jobs?limit=5", b"/history?max_items=5", b"/queue"]),
               ("/v1/jobs", [b"/v1/jobs?limit=5", b"/api/jobs?limit=5", b"/history?max_items=5"]),
               ("/internal/logs/subscribe", [b"/internal/logs/raw"])]

    def read_back(self, route):
        for prefix, targets in self.READERS:
            if prefix in route:
                for target in targets:
                    self.recorder.send("GET", target, [], None, route="GET " + self.template_of(target),
                                       kind="reading stored state after an accepted change")
                return

    def get(self, target, route, kind="", **kwargs):
        return self.send("GET", target, route=route, kind=kind, stream_seconds=1.0, **kwargs)

    def post_json(self, target, value, route, kind="", method="POST", **kwargs):
        body = value if isinstance(value, (bytes, bytearray)) else dumps(value)
        return self.send(method, target, body, route=route, kind=kind, **kwargs)

    # --- values -------------------------------------------------------------------------------

    def odd_string(self):
        return self.rng.choice(ODD_STRINGS + [self.ckpt, self.input_name] + self.state["job_ids"][:1])

    def random_json(self, depth=0):
        roll = self.rng.random()
        if depth > 3 or roll < 0.55:
            pick = self.rng.random()
            if pick < 0.15:
                return self.rng.choice(HUGE_NUMBERS)
            if pick < 0.35:
                return self.rng.choice(ODD_NUMBERS)
            if pick < 0.45:
                return self.rng.choice([None, True, False])
            if pick < 0.5:
                return RawString(self.rng.choice(INVALID_UTF8))
            return self.odd_string()
        if roll < 0.78:
            return [self.random_json(depth + 1) for _ in range(self.rng.randint(0, 4))]
        return {self.odd_string()[:40]: self.random_json(depth + 1) for _ in range(self.rng.randint(0, 4))}

    def segment(self, name):
        """A path segment for the parameter `name`: a real value or an odd one."""
        real = {
            "file...": [b"workflows%2Fdreamforge_sd1_txt2img.json", b"comfy.settings.json", b"user.css",
                        b"workflows/dreamforge_sd1_txt2img.json", b"workflows%2F..%2F..%2F..%2Fsecret.key"],
            "class": [b"KSampler", b"CheckpointLoaderSimple", b"LoadImage", b"SaveImage"],
            "folder": [b"checkpoints", b"loras", b"vae", b"input"],
            "path_index": [b"0", b"1", b"-1", b"99999999999999999999", b"x"],
            "filename...": [pct(self.ckpt.encode()), b"x.safetensors", b"..%2f..%2fsecret.key"],
            "job": [j.encode() for j in self.state["job_ids"] + self.prompt_ids[:2]],
            "prompt": [p.encode() for p in self.prompt_ids[:2]],
            "model": [m.encode() for m in self.state["model_ids"]],
            "key...": [a["path"].split("/v1/files/", 1)[1].encode() for a in self.state["artifacts"][:2]],
            "setting": [b"Comfy.Locale", b"Comfy.Fuzz", b"Comfy.ColorPalette"],
            "static...": [b"index.html", b"assets", b"..%2f..%2f..%2f..%2fetc%2fpasswd",
                          b"%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", b"../../../../etc/passwd"],
            "id": [b"1", b"x"],
        }.get(name) or [b"x"]
        if self.rng.random() < 0.45:
            return self.rng.choice(real)
        odd = self.rng.choice(ODD_SEGMENTS)
        if name.endswith("...") and self.rng.random() < 0.3:
            odd = self.rng.choice(real) + b"/" + odd
        return odd

    def fill(self, template):
        """The route pattern with each {name} part replaced by a path segment (bytes)."""
        out = template.encode()
        for name in re.findall(r"\{([a-z_.]+)\}", template):
            out = out.replace(b"{" + name.encode() + b"}", self.segment(name), 1)
        return out

    def random_query(self, template):
        names = QUERY_PARAMETERS.get(template, [])
        pairs = []
        for _ in range(self.rng.randint(0, 4)):
            if names and self.rng.random() < 0.75:
                key = self.rng.choice(names).encode()
            else:
                key = self.rng.choice(ODD_QUERY_VALUES)[:40]
            if key == b"filename" and self.rng.random() < 0.4:
                value = pct(self.rng.choice([self.input_name] + [o.get("filename", "x") for o in self.state["outputs"]]).encode())
            else:
                value = self.rng.choice(ODD_QUERY_VALUES)
            pairs.append(key + b"=" + value if self.rng.random() < 0.9 else key)
        return (b"?" + b"&".join(pairs)) if pairs else b""

    # --- the cases ----------------------------------------------------------------------------

    def corpus(self):
        """The fixed adversarial cases: (name, action) pairs."""
        cases = []
        add = lambda name, action: cases.append((name, action))

        # Invalid UTF-8, NUL and other odd bytes in paths and queries, as %XX and as raw bytes.
        targets = [b"/%ff", b"/api/%ff", b"/%ff%fe", b"/view?filename=%ff", b"/view?filename=%ff&type=input",
                   b"/view?filename=a.png&subfolder=%ff", b"/view?filename=a.png&type=%ff",
                   b"/view?filename=%00", b"/view?filename=a.png&preview=%ff", b"/view?filename=%ff&channel=rgb",
                   b"/api/view?filename=..%2f..%2f..%2f..%2fetc%2fpasswd&type=input",
                   b"/view?filename=passwd&subfolder=..%2f..%2f..%2f..%2f..%2fetc&type=input",
                   b"/userdata/%ff", b"/userdata?dir=%ff", b"/v2/userdata?path=%ff", b"/settings/%ff",
                   b"/object_info/%ff", b"/models/%ff", b"/experiment/models/%ff",
                   b"/experiment/models/preview/%ff/0/%ff", b"/experiment/models/preview/checkpoints/%ff/x",
                   b"/view_metadata/%ff?filename=%ff", b"/view_metadata/checkpoints?filename=%ff",
                   b"/history/%ff", b"/api/jobs/%ff", b"/api/jobs?status=%ff", b"/api/jobs?status=pending,%ff",
                   b"/api/jobs?limit=%ff", b"/api/jobs?sort_by=%ff", b"/v1/jobs/%ff", b"/v1/jobs/%ff/events",
                   b"/v1/jobs/%ff/logs", b"/v1/models/%ff", b"/v1/files/%ff", b"/v1/files/%ff?expires=1&sig=%ff",
                   b"/v1/jobs?status=%ff", b"/v1/jobs?cursor=%ff", b"/v1/jobs?limit=%ff", b"/v1/jobs?%ff=%ff",
                   b"/global_subgraphs/%ff", b"/templates/%ff", b"/assets/%ff", b"/%c0%ae%c0%ae/etc/passwd",
                   b"/%ed%a0%80", b"/user.css?%ff", b"/healthz?%ff", b"/%00", b"/view?filename=a%00b.png",
                   b"/userdata/a%00b", b"/object_info/%00", b"/history?max_items=%ff&offset=%ff"]
        for target in targets:
            add(f"utf8-target GET {target!r}", lambda t=target: self.get(t, route="GET " + self.template_of(t), kind="invalid utf-8 / NUL in the target"))
            if b"%ff" in target:
                raw = target.replace(b"%ff", b"\xff")
                add(f"raw-bytes-target GET {raw!r}", lambda t=raw: self.get(t, route="GET " + self.template_of(t), kind="raw invalid utf-8 bytes in the target"))
        for method, target in [("POST", b"/v1/jobs/%ff/cancel"), ("POST", b"/settings/%ff"), ("DELETE", b"/userdata/%ff"),
                               ("POST", b"/userdata/%ff?overwrite=true"), ("POST", b"/userdata/workflows%2F%ff.json"),
                               ("POST", b"/userdata/workflows%2Fa.json/move/workflows%2F%ff.json")]:
            add(f"utf8-target {method} {target!r}", lambda m=method, t=target: self.post_json(t, b'{"a": 1}', route=f"{m} {self.template_of(t)}",
                                                                                           kind="invalid utf-8 in the target", method=m))
        for dest in (b"%ff.json", b"..%2f..%2f..%2fmoved.json", b"workflows%2F..%2F..%2Fmoved.json", b"%00", b"", b"a%2F%2F%2Fb.json",
                     b"workflows%2Fdreamforge_sd1_txt2img.json", b"%2Fetc%2Fmoved.json", b"a/move/b.json"):
            add(f"userdata move to {dest!r}", lambda d=dest: self.userdata_move(b"workflows%2Ffuzz-move.json", d, kind="move to an odd name"))
        for label, body in {"true": b"true", "an array": b"[]", "a string": b'"x"', "null": b"null", "not JSON": b"{",
                            "empty": b"", "nested settings": b'{"Comfy.Locale": {"a": [1, {"b": null}]}}',
                            "invalid utf-8": b'{"Comfy.Locale": "\xff"}', "huge number": b'{"Comfy.Locale": 1e400}'}.items():
            add(f"userdata settings file {label}", lambda b=body, l=label: self.overwrite_settings_file(b, l))
        for name in (b"workflows", b"workflows%2F", b".", b"%2e", b"user.css", b"comfy.settings.json%2Fx"):
            add(f"userdata write over {name!r}", lambda n=name: self.post_json(b"/userdata/" + n + b"?overwrite=true", b"{}",
                                                                               route="POST /userdata/{file...}", kind="write over a folder or a special file"))
        for header in ("X-Request-ID", "Idempotency-Key", "Last-Event-ID", "Content-Type", "Accept", "Cookie", "User-Agent"):
            for value in (b"\xff\xfe", b"a\x00b", b"x" * 5000):
                add(f"header {header}={value[:8]!r}", lambda h=header, v=value: self.odd_header(h, v))

        # JSON nested 100000 deep into every JSON route.
        for route, target, method in [("POST /prompt", "/prompt", "POST"), ("POST /v1/jobs", "/v1/jobs", "POST"),
                                      ("POST /settings", "/settings", "POST"), ("POST /settings/{setting}", "/settings/Comfy.Fuzz", "POST"),
                                      ("POST /queue", "/queue", "POST"), ("POST /history", "/history", "POST"),
                                      ("POST /interrupt", "/interrupt", "POST"), ("POST /free", "/free", "POST"),
                                      ("POST /users", "/users", "POST"),
                                      ("PATCH /internal/logs/subscribe", "/internal/logs/subscribe", "PATCH"),
                                      ("POST /userdata/{file...}", "/userdata/deep.json?overwrite=true", "POST")]:
            for kind, body in deep_bodies().items():
                add(f"{kind} {route}", lambda t=target, b=body, r=route, m=method, k=kind:
                    self.post_json(t, b, route=r, kind=f"JSON nested {DEEP} deep ({k})", method=m))
        add("deep-value POST /prompt", lambda: self.post_prompt(self.graph_with("6", "text", Raw(b"[" * 20000 + b"]" * 20000)), kind="a node input nested 20000 deep"))
        add("deep-value POST /v1/jobs", lambda: self.post_json("/v1/jobs", {"model_id": self.state["model_ids"][0], "prompt": Raw(b"[" * 20000 + b"]" * 20000)}, route="POST /v1/jobs", kind="a field nested 20000 deep"))
        add("deep-extra POST /prompt", lambda: self.post_prompt(self.graph, extra={"extra_data": Raw(b'{"a":' * 20000 + b"1" + b"}" * 20000)}, kind="extra_data nested 20000 deep"))

        # Huge numbers as literal digits.
        for number in HUGE_NUMBERS[:4]:
            text = number.text.decode()[:12]
            for node, field in [("3", "seed"), ("3", "steps"), ("3", "cfg"), ("3", "denoise"), ("5", "width"), ("5", "batch_size")]:
                add(f"huge-number {text} /prompt {field}", lambda n=number, nd=node, f=field:
                    self.post_prompt(self.graph_with(nd, f, n), kind=f"{f} = huge number"))
            for field in ("number", "front", "prompt_id", "client_id", "partial_execution_targets"):
                add(f"huge-number {text} /prompt envelope {field}", lambda n=number, f=field:
                    self.post_prompt(self.graph, extra={f: n}, kind=f"{f} = huge number"))
            for field in ("width", "height", "steps", "seed", "count", "priority", "max_attempts", "guidance", "denoise"):
                add(f"huge-number {text} /v1/jobs {field}", lambda n=number, f=field: self.post_json(
                    "/v1/jobs", {"model_id": self.state["model_ids"][0], "prompt": "x", "width": 64, "height": 64, "steps": 2, f: n},
                    route="POST /v1/jobs", kind=f"{f} = huge number"))
            add(f"huge-number {text} /v1/jobs workflow", lambda n=number: self.post_json(
                "/v1/jobs", {"workflow": self.graph_with("3", "seed", n)}, route="POST /v1/jobs", kind="workflow seed = huge number"))
            for target, value in [("/settings", {"Comfy.Fuzz": number}), ("/settings/Comfy.Fuzz", number),
                                  ("/queue", {"delete": number}), ("/queue", {"clear": number}), ("/history", {"delete": [number]}),
                                  ("/history", {"clear": number}), ("/interrupt", {"prompt_id": number}),
                                  ("/free", {"unload_models": number}), ("/users", {"username": number}),
                                  ("/internal/logs/subscribe", {"clientId": "x", "enabled": number})]:
                method = "PATCH" if "logs" in target else "POST"
                add(f"huge-number {text} {target} {list(value)[0] if isinstance(value, dict) else ''}",
                    lambda t=target, v=value, m=method: self.post_json(t, v, route=f"{m} {self.template_of(t.encode())}", kind="huge number", method=m))
        for target in [b"/history?max_items=1" + b"0" * 400, b"/history?offset=1e400", b"/history?max_items=-1&offset=1" + b"0" * 40,
                       b"/api/jobs?limit=1" + b"0" * 400, b"/api/jobs?offset=1" + b"0" * 400, b"/v1/jobs?limit=1" + b"0" * 400,
                       b"/v1/jobs?limit=1e400", b"/view?filename=x.png&preview=webp;" + b"9" * 400,
                       b"/experiment/models/preview/checkpoints/1" + b"0" * 400 + b"/x",
                       b"/experiment/models/preview/checkpoints/-1/x"]:
            add(f"huge-number GET {target[:60]!r}", lambda t=target: self.get(t, route="GET " + self.template_of(t), kind="huge number in the query"))
        for job in self.state["job_ids"][:1]:
            for after in (b"1" + b"0" * 400, b"-1", b"1e400", b"9223372036854775808"):
                add(f"huge-number events after={after[:10]!r}", lambda j=job, a=after: self.get(
                    f"/v1/jobs/{j}/events?after=".encode() + a, route="GET /v1/jobs/{job}/events", kind="huge event id"))
                add(f"huge-number Last-Event-ID {after[:10]!r}", lambda j=job, a=after: self.get(
                    f"/v1/jobs/{j}/events".encode(), route="GET /v1/jobs/{job}/events", kind="huge Last-Event-ID",
                    headers=[("Last-Event-ID", a)]))

        # Long names: 300 to 5000 characters.
        for length in (255, 256, 300, 1000, 5000):
            name = b"a" * length
            add(f"long-name upload {length}", lambda n=name: self.upload(n + b".png", kind=f"{len(n)}-character file name"))
            add(f"long-name upload subfolder {length}", lambda n=name: self.upload(b"x.png", subfolder=n, kind=f"{len(n)}-character subfolder"))
            add(f"long-name userdata POST {length}", lambda n=name: self.post_json(b"/userdata/" + n + b".json", b"{}", route="POST /userdata/{file...}", kind=f"{len(n)}-character name"))
            add(f"long-name userdata dir POST {length}", lambda n=name: self.post_json(b"/userdata/workflows%2F" + n + b"%2Fx.json", b"{}", route="POST /userdata/{file...}", kind=f"{len(n)}-character folder"))
            add(f"long-name userdata GET {length}", lambda n=name: self.get(b"/userdata/" + n + b".json", route="GET /userdata/{file...}", kind=f"{len(n)}-character name"))
            add(f"long-name userdata move {length}", lambda n=name: self.userdata_move(b"workflows%2Ffuzz-move.json", n + b".json", kind=f"move to a {len(n)}-character name"))
            add(f"long-name view {length}", lambda n=name: self.get(b"/view?type=input&filename=" + n + b".png", route="GET /view", kind=f"{len(n)}-character file name"))
            add(f"long-name view subfolder {length}", lambda n=name: self.get(b"/view?type=input&filename=x.png&subfolder=" + n, route="GET /view", kind=f"{len(n)}-character subfolder"))
            add(f"long-name settings {length}", lambda n=name: self.post_json(b"/settings/" + n, b"1", route="POST /settings/{setting}", kind=f"{len(n)}-character setting id"))
            add(f"long-name object_info {length}", lambda n=name: self.get(b"/object_info/" + n, route="GET /object_info/{class}", kind=f"{len(n)}-character class"))
            add(f"long-name v2 userdata {length}", lambda n=name: self.get(b"/v2/userdata?path=" + n, route="GET /v2/userdata", kind=f"{len(n)}-character path"))
            add(f"long-name userdata dir {length}", lambda n=name: self.get(b"/userdata?dir=" + n, route="GET /userdata", kind=f"{len(n)}-character dir"))
            add(f"long-name prompt filename_prefix {length}", lambda n=name: self.post_prompt(self.graph_with("9", "filename_prefix", n.decode()), kind=f"{len(n)}-character filename_prefix", small=True))
            add(f"long-name prompt_id {length}", lambda n=name: self.post_prompt(self.graph, extra={"prompt_id": n.decode()}, kind=f"{len(n)}-character prompt_id"))
            add(f"long-name static {length}", lambda n=name: self.get(b"/" + n, route="GET /{static...}", kind=f"{len(n)}-character path"))
            add(f"long-name ws clientId {length}", lambda n=name: self.ws_session(b"clientId=" + n, [("text", b'{"type":"feature_flags","data":{}}')], kind=f"{len(n)}-character clientId"))

        # Multipart uploads: odd file names, subfolders, types, structures and images.
        names = [b"\xff.png", b"a\xfe\xff.png", b"\xc0\xaf.png", b"\xed\xa0\x80.png", b"../evil.png", b"..\\evil.png",
                 b"..", b".", b"/etc/evil.png", b"a\x00b.png", b"", b"%2e%2e%2fevil.png", b"con.png", b" .png",
                 b"a/b.png", b".hidden.png", "\u00fcn\u00ef.png".encode(), b"a\"b.png", b"a;b=c.png", b"x" * 5000 + b"\xff.png",
                 b"\xff" * 300 + b".png", b"a\rb.png", b"fuzz-input.png", b"noext", b"a.png.exe", b"%ff.png"]
        for name in names:
            add(f"upload name {name[:20]!r}", lambda n=name: self.upload(n, kind="odd file name"))
            add(f"upload-mask name {name[:20]!r}", lambda n=name: self.upload(n, mask=True, kind="odd mask file name"))
        for subfolder in (b"..", b"../..", b"/tmp", b"a/../../..", b"\xff", b"a\x00b", b"%2e%2e", b"a/b/c", b"\\..\\.."):
            add(f"upload subfolder {subfolder!r}", lambda s=subfolder: self.upload(b"s.png", subfolder=s, kind="odd subfolder"))
        for kind in (b"output", b"temp", b"\xff", b"../input", b"", b"inputx", b"input\x00"):
            add(f"upload type {kind!r}", lambda t=kind: self.upload(b"t.png", folder_type=t, kind="odd type field"))
        add("upload overwrite", lambda: self.upload(b"fuzz-input.png", overwrite=b"true", kind="overwrite"))
        images = {"truncated": make_png(16, 16, truncate=True), "bigger-than-data": make_png(4, 4, declared=(8192, 8192)),
                  "zero-size": make_png(4, 4, declared=(0, 0)), "wide": make_png(4, 4, declared=(1 << 24, 1)),
                  "not-an-image": b"GIF89a" + b"\x00" * 64, "empty": b"", "text": b"hello",
                  "jpeg-header-only": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "webp-header-only": b"RIFF\x10\x00\x00\x00WEBPVP8 ",
                  "1x1": make_png(1, 1), "tall": make_png(1, 2000)}
        for label, data in images.items():
            add(f"upload image {label}", lambda d=data, l=label: self.upload(f"img-{l}.png".encode(), data=d, kind=f"{l} image"))
            add(f"upload-mask image {label}", lambda d=data, l=label: self.upload(f"mask-{l}.png".encode(), data=d, mask=True, kind=f"{l} mask"))
        for label, structure in self.multipart_structures().items():
            add(f"upload structure {label}", lambda s=structure, l=label: self.send_multipart(s[0], s[1], kind=f"multipart: {l}"))
        for ref in self.odd_original_refs():
            add(f"upload-mask original_ref {short_repr(ref, 30)}", lambda r=ref: self.upload(b"m.png", mask=True, original_ref=r, kind="odd original_ref"))
        add("upload body 33 MiB", lambda: self.upload(b"big.png", data=b"\x00" * (33 * 1024 * 1024), kind="body over the size limit"))

        # WebSocket frames to /ws.
        for label, frames in self.ws_frame_sets().items():
            add(f"ws {label}", lambda f=frames, l=label: self.ws_session(b"clientId=fuzz-ws-%d" % self.next_client(), f, kind=l))
        for query in (b"clientId=%ff", b"clientId=\xff", b"clientId=", b"clientId=a&clientId=b", b"clientId=%00",
                      b"clientId=" + b"%f0%9f%98%80" * 100, b"", b"%ff=%ff"):
            add(f"ws query {query[:20]!r}", lambda q=query: self.ws_session(q, [("text", b'{"type":"feature_flags","data":{"supports_preview_metadata":true}}')],
                                                                            kind="odd /ws query"))
        add("ws same clientId twice", self.ws_same_client)
        add("ws logs subscription", self.ws_logs_subscription)

        # The service's workflow, mutated.
        for label, mutate in self.graph_mutations().items():
            add(f"graph {label}", lambda m=mutate, l=label: self.post_prompt(m(copy.deepcopy(self.graph)), kind=f"workflow: {l}"))
        for label, extra in self.prompt_envelopes().items():
            add(f"prompt envelope {label}", lambda e=extra, l=label: self.post_prompt(self.graph, extra=e, kind=f"prompt envelope: {l}"))

        # Wrong types and odd bodies for each JSON route.
        for route, target, method, template in self.json_routes():
            for label, body in self.odd_bodies(template).items():
                add(f"body {route} {label}", lambda t=target, b=body, r=route, m=method, l=label:
                    self.post_json(t, b, route=r, kind=f"body: {l}", method=m))

        # HTTP itself: methods, targets, framing, sizes.
        for label, action in self.http_level_cases().items():
            add(f"http {label}", action)
        return cases

    def template_of(self, target):
        """The route template a target was written against (for grouping findings): the most
        specific one that matches its path."""
        path = target.split(b"?", 1)[0].decode("latin-1")
        if path.startswith("/api/") and not path.startswith("/api/jobs"):
            path = path[4:]
        best, best_literal = None, -1
        for _, template, _ in ROUTES:
            pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]*", re.escape(template))
            pattern = "^" + re.sub(r"\\\{[a-z_]+\\\.\\\.\\\.\\\}", ".+", pattern) + "$"
            literal = len(re.sub(r"\{[^}]*\}", "", template))
            if re.match(pattern, path, re.S) and literal > best_literal:
                best, best_literal = template, literal
        return best or path[:40]

    # --- headers ------------------------------------------------------------------------------

    def odd_header(self, name, value):
        targets = {"X-Request-ID": [("GET", b"/v1/jobs/nope"), ("GET", b"/no/such/route"), ("GET", b"/history/nope")],
                   "Idempotency-Key": [("POST", b"/v1/jobs")], "Last-Event-ID": [("GET", b"/v1/jobs/%s/events" % self.state["job_ids"][0].encode())],
                   "Content-Type": [("POST", b"/prompt"), ("POST", b"/upload/image"), ("POST", b"/v1/jobs")]}
        for method, target in targets.get(name, [("GET", b"/object_info"), ("POST", b"/prompt")]):
            body = None
            if method == "POST":
                body = dumps({"model_id": self.state["model_ids"][0], "prompt": "header fuzz", "width": 64, "height": 64, "steps": 1}
                             if target == b"/v1/jobs" else {"prompt": self.graph})
            headers = [(name, value)]
            if name != "Content-Type" and body is not None:
                headers.append(("Content-Type", "application/json"))
            self.send(method, target, body, headers=headers, route=f"{method} {self.template_of(target)}",
                      kind=f"odd {name} header", content_type=False, stream_seconds=1.0)

    # --- user data ----------------------------------------------------------------------------

    def userdata_move(self, source, dest, kind=""):
        """Writes `source` (a percent-encoded user data path), then moves it to `dest`."""
        self.post_json(b"/userdata/" + source + b"?overwrite=true", b'{"nodes": []}', route="POST /userdata/{file...}",
                       kind="a file to move")
        return self.post_json(b"/userdata/" + source + b"/move/" + dest, b"", route="POST /userdata/{file...}",
                              kind=kind, content_type=False)

    def overwrite_settings_file(self, body, label):
        """The settings live in a user data file: write it through /userdata with what /settings
        would never write (the reads that follow the write show what that does), then restore it."""
        self.post_json(self.route_path("/userdata/comfy.settings.json").encode() + b"?overwrite=true", body,
                       route="POST /userdata/{file...}", kind=f"the settings file written as {label}")
        self.get(b"/settings/Comfy.Locale", route="GET /settings/{setting}", kind=f"after the settings file was written as {label}")
        self.post_json(b"/settings/Comfy.Locale", b'"en"', route="POST /settings/{setting}", kind=f"after the settings file was written as {label}")
        self.post_json(b"/userdata/comfy.settings.json?overwrite=true", b"{}", route="POST /userdata/{file...}", kind="restore the settings file")

    # --- uploads ------------------------------------------------------------------------------

    def multipart(self, parts, boundary=b"fuzzboundary7MA4YWxkTrZu0gW", close=True):
        out = b""
        for part in parts:
            out += b"--" + boundary + b"\r\n"
            if "raw_headers" in part:
                out += part["raw_headers"]
            else:
                disposition = b'Content-Disposition: form-data; name="' + part["name"] + b'"'
                if part.get("filename") is not None:
                    disposition += b'; filename="' + part["filename"] + b'"'
                out += disposition + b"\r\n"
                if part.get("type"):
                    out += b"Content-Type: " + part["type"] + b"\r\n"
            out += b"\r\n" + part.get("body", b"") + b"\r\n"
        if close:
            out += b"--" + boundary + b"--\r\n"
        return out

    def send_multipart(self, body, content_type, target=None, kind="", route=None):
        mask = target is not None and b"mask" in target
        target = target or self.route_path("/upload/image").encode()
        return self.send("POST", target, body, content_type=content_type, kind=kind,
                         route=route or ("POST /upload/mask" if mask else "POST /upload/image"))

    def upload(self, filename, data=None, subfolder=None, folder_type=None, overwrite=None, mask=False,
               original_ref=None, kind=""):
        data = make_png(8, 8, (self.rng.randrange(256), 90, 30, 255)) if data is None else data
        parts = [{"name": b"image", "filename": filename, "type": b"image/png", "body": data}]
        if subfolder is not None:
            parts.append({"name": b"subfolder", "body": subfolder})
        if folder_type is not None:
            parts.append({"name": b"type", "body": folder_type})
        if overwrite is not None:
            parts.append({"name": b"overwrite", "body": overwrite})
        if mask:
            ref = original_ref if original_ref is not None else dumps({"filename": self.input_name, "type": "input", "subfolder": ""})
            parts.append({"name": b"original_ref", "body": ref})
        boundary = b"fuzzboundary7MA4YWxkTrZu0gW"
        target = self.route_path("/upload/mask" if mask else "/upload/image").encode()
        exchange = self.send_multipart(self.multipart(parts, boundary), b"multipart/form-data; boundary=" + boundary,
                                       target=target, kind=kind)
        if exchange.status == 200:
            try:
                saved = json.loads(exchange.response_body)
                query = urllib.parse.urlencode({"filename": saved.get("name", ""), "type": saved.get("type", "input"),
                                                "subfolder": saved.get("subfolder", "")}).encode()
            except (ValueError, AttributeError):
                query = b"filename=" + pct(filename)
            self.get(b"/view?" + query, route="GET /view", kind="the file just uploaded")
            self.get(b"/object_info/LoadImage", route="GET /object_info/{class}", kind="after an upload")
        return exchange

    def multipart_structures(self):
        png = make_png(4, 4)
        boundary = b"b0undary"
        ctype = b"multipart/form-data; boundary=" + boundary
        good = [{"name": b"image", "filename": b"s.png", "type": b"image/png", "body": png}]
        many = [{"name": b"field%d" % i, "body": b"x"} for i in range(5000)] + good
        return {
            "no boundary parameter": (self.multipart(good, boundary), b"multipart/form-data"),
            "boundary mismatch": (self.multipart(good, boundary), b"multipart/form-data; boundary=other"),
            "empty boundary": (self.multipart(good, b""), b"multipart/form-data; boundary="),
            "quoted boundary": (self.multipart(good, boundary), b'multipart/form-data; boundary="b0undary"'),
            "boundary of 300 characters": (self.multipart(good, b"b" * 300), b"multipart/form-data; boundary=" + b"b" * 300),
            "no closing boundary": (self.multipart(good, boundary, close=False), ctype),
            "truncated in a part": (self.multipart(good, boundary)[:60], ctype),
            "empty body": (b"", ctype),
            "only dashes": (b"--", ctype),
            "part without headers": (b"--b0undary\r\n\r\nxx\r\n--b0undary--\r\n", ctype),
            "header line without colon": (b"--b0undary\r\nContent-Disposition\r\n\r\nxx\r\n--b0undary--\r\n", ctype),
            "unquoted name": (b"--b0undary\r\nContent-Disposition: form-data; name=image; filename=a.png\r\n\r\n" + png + b"\r\n--b0undary--\r\n", ctype),
            "filename* (RFC 5987)": (b"--b0undary\r\nContent-Disposition: form-data; name=\"image\"; filename*=UTF-8''%ff%fe.png\r\n\r\n" + png + b"\r\n--b0undary--\r\n", ctype),
            "unterminated quote": (b"--b0undary\r\nContent-Disposition: form-data; name=\"image; filename=\"a.png\r\n\r\n" + png + b"\r\n--b0undary--\r\n", ctype),
            "header of 100 KB": (b"--b0undary\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" + b"a" * 100000 + b".png\"\r\n\r\n" + png + b"\r\n--b0undary--\r\n", ctype),
            "two image parts": (self.multipart(good + good, boundary), ctype),
            "5000 parts": (self.multipart(many, boundary), ctype),
            "not multipart": (png, b"image/png"),
            "urlencoded": (b"image=abc&type=input", b"application/x-www-form-urlencoded"),
            "boundary in the data": (self.multipart([{"name": b"image", "filename": b"s.png", "body": b"--b0undary\r\n" + png}], boundary), ctype),
            "LF line ends": (self.multipart(good, boundary).replace(b"\r\n", b"\n"), ctype),
            "invalid utf-8 in the content type": (self.multipart(good, boundary), b"multipart/form-data; boundary=b0undary; charset=\xff"),
        }

    def odd_original_refs(self):
        return [b"", b"x", b"{}", b"[]", b"null", b"1e400", dumps({"filename": "../../../../etc/passwd", "type": "input"}),
                dumps({"filename": self.input_name, "type": "output"}), dumps({"filename": self.input_name, "type": "x"}),
                dumps({"filename": self.input_name, "subfolder": ".."}), dumps({"filename": 5}), dumps({"filename": None}),
                dumps({"filename": RawString(b"\xff.png"), "type": "input"}), dumps({"filename": "\ud800.png"}),
                dumps({"filename": "a" * 5000}), b'{"filename":' * 50000, dumps({"filename": self.input_name, "type": ["input"]}),
                dumps({"filename": "img-truncated.png", "type": "input"}), dumps({"filename": "img-zero-size.png", "type": "input"})]

    # --- WebSocket ----------------------------------------------------------------------------

    def next_client(self):
        self.ws_clients += 1
        return self.ws_clients

    @staticmethod
    def frame(opcode, payload, fin=True, rsv=0, mask=True, length=None):
        """A WebSocket frame as a client sends it (masked), or as told otherwise."""
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        size = len(payload) if length is None else length
        if size < 126:
            header = struct.pack("!BB", first, (0x80 if mask else 0) | size)
        elif size < 65536:
            header = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, size)
        else:
            header = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, size)
        if not mask:
            return header + payload
        key = os.urandom(4)
        return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

    def ws_frame_sets(self):
        f = self.frame
        flags = b'{"type":"feature_flags","data":{"supports_preview_metadata":true}}'
        return {
            "feature_flags": [("text", flags), ("text", flags)],
            "feature_flags wrong data types": [("text", b'{"type":"feature_flags","data":{"supports_preview_metadata":"yes"}}')],
            "feature_flags data number": [("text", b'{"type":"feature_flags","data":{"supports_preview_metadata":1e400}}')],
            "feature_flags data array": [("text", b'{"type":"feature_flags","data":[]}')],
            "feature_flags data null": [("text", b'{"type":"feature_flags","data":null}')],
            "type not a string": [("text", b'{"type":5}')],
            "type object": [("text", b'{"type":{"a":1}}')],
            "array message": [("text", b"[]")],
            "number message": [("text", b"1e400")],
            "huge integer message": [("text", b"1" + b"0" * 400)],
            "invalid json": [("text", b"{not json")],
            "empty text": [("text", b"")],
            "invalid utf-8 text": [("text", b"\xff\xfe\xfd")],
            "invalid utf-8 in json string": [("text", b'{"type":"\xff"}')],
            "lone surrogate escape": [("text", b'{"type":"\\ud800"}')],
            "deep json array": [("text", b"[" * DEEP + b"]" * DEEP)],
            "deep json object": [("text", b'{"a":' * DEEP + b"1" + b"}" * DEEP)],
            "deep json under 1 MiB": [("text", b"[" * 500000 + b"]" * 500000)],
            "deep json unclosed": [("text", b"{\"type\":" + b"[" * DEEP)],
            "binary frame": [("binary", b"\x00\x01\x02\xff")],
            "binary then text": [("binary", b"\xff" * 100), ("text", flags)],
            "text of 2 MiB": [("text", b"a" * (2 * 1024 * 1024))],
            "binary of 2 MiB": [("binary", b"\x00" * (2 * 1024 * 1024))],
            "text just under 1 MiB": [("text", b'{"type":"feature_flags","data":{"x":"' + b"a" * (1024 * 1024 - 100) + b'"}}')],
            "many messages": [("text", flags)] * 300,
            "ping": [("ping", b"hello"), ("text", flags)],
            "unsolicited pong": [("pong", b"x")],
            "ping of 126 bytes": [("raw", f(0x9, b"p" * 126))],
            "fragmented ping": [("raw", f(0x9, b"p", fin=False))],
            "continuation without start": [("raw", f(0x0, b"abc"))],
            "fragmented text": [("raw", f(0x1, b'{"type":"feat', fin=False)), ("raw", f(0x0, b'ure_flags","data":{}}'))],
            "fragmented text, invalid utf-8 split": [("raw", f(0x1, b"\xe2\x82", fin=False)), ("raw", f(0x0, b"\xff"))],
            "new text inside a fragmented one": [("raw", f(0x1, b"a", fin=False)), ("raw", f(0x1, b"b"))],
            "reserved opcode 3": [("raw", f(0x3, b"x"))],
            "reserved opcode 11": [("raw", f(0xB, b"x"))],
            "rsv bits set": [("raw", f(0x1, b"{}", rsv=7))],
            "unmasked frame": [("raw", f(0x1, b"{}", mask=False))],
            "length 2**63-1 announced": [("raw", f(0x1, b"abc", length=(1 << 63) - 1))],
            "length over 1 MiB announced, little sent": [("raw", f(0x2, b"abc", length=5 * 1024 * 1024))],
            "close code 999": [("raw", f(0x8, struct.pack("!H", 999)))],
            "close code 1005": [("raw", f(0x8, struct.pack("!H", 1005)))],
            "close code 5000": [("raw", f(0x8, struct.pack("!H", 5000)))],
            "close of 1 byte": [("raw", f(0x8, b"\x03"))],
            "close with invalid utf-8 reason": [("raw", f(0x8, struct.pack("!H", 1000) + b"\xff\xfe"))],
            "frames after close": [("raw", f(0x8, struct.pack("!H", 1000))), ("text", flags)],
            "garbage bytes": [("raw", os.urandom(64))],
        }

    def ws_session(self, query, frames, kind="", path=b"/ws", origin=None):
        """One WebSocket connection: the handshake, then `frames`, reading what comes back."""
        target = path + (b"?" + query if query else b"")
        shown = [(what, short_repr(data, 60)) for what, data in frames[:6]]
        exchange = Exchange("WS", target, [], repr(shown) + (f" ... ({len(frames)} frames)" if len(frames) > 6 else ""),
                            "WS /ws", kind)
        recorder = self.recorder
        if recorder.down:
            raise ServerDown(recorder.down)
        recorder.requests += 1
        recorder.recent.append(exchange)
        ws = None
        try:
            ws = websocket.WebSocket(skip_utf8_validation=True)
            ws.settimeout(REQUEST_TIMEOUT)
            ws.connect(f"ws://{recorder.host}:{recorder.port}" + target.decode("latin-1"),
                       **({"origin": origin} if origin else {"suppress_origin": True}))
            exchange.status = 101
            ws.settimeout(1.0)
            replies = 0
            try:
                ws.recv()  # the status message
                replies += 1
            except (websocket.WebSocketTimeoutException, socket.timeout):
                pass
            for what, data in frames:
                recorder.requests += 1
                if what == "text":
                    ws.send(data, opcode=websocket.ABNF.OPCODE_TEXT)
                elif what == "binary":
                    ws.send(data, opcode=websocket.ABNF.OPCODE_BINARY)
                elif what == "ping":
                    ws.ping(data)
                elif what == "pong":
                    ws.pong(data)
                else:
                    ws.sock.sendall(data)
                if len(frames) < 20:
                    ws.settimeout(0.3)
                    try:
                        ws.recv()
                        replies += 1
                    except (websocket.WebSocketTimeoutException, socket.timeout):
                        pass
        except websocket.WebSocketBadStatusException as error:
            exchange.status = error.status_code
            exchange.response_body = error.resp_body or b""
        except (websocket.WebSocketTimeoutException, socket.timeout) as error:
            if exchange.status is None:
                exchange.error = error
        except (websocket.WebSocketException, OSError, ValueError) as error:
            if exchange.status is None:
                exchange.error = error
        finally:
            if ws is not None:
                try:
                    ws.close(timeout=0.5)
                except Exception:
                    pass
        recorder.statuses["WS /ws"][exchange.status or "no answer"] += 1
        if exchange.status is None:
            recorder.after_transport_error(exchange, "WS /ws")
        else:
            recorder.check_alive(exchange, "WS /ws")
            recorder.judge(exchange, "WS /ws")
        return exchange

    def ws_same_client(self):
        client = b"clientId=fuzz-twice"
        first = websocket.WebSocket()
        try:
            first.settimeout(REQUEST_TIMEOUT)
            first.connect(f"{self.base.replace('http', 'ws')}/ws?clientId=fuzz-twice", suppress_origin=True)
            self.ws_session(client, [("text", b'{"type":"feature_flags","data":{}}')], kind="second socket, same clientId")
            self.ws_session(client, [("raw", self.frame(0x8, b""))], kind="third socket, same clientId")
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            first.close()
        self.recorder.requests += 1

    def ws_logs_subscription(self):
        """A socket subscribed to the service's log: then requests whose log lines hold odd bytes."""
        client = "fuzz-logs-%d" % self.next_client()
        ws = websocket.WebSocket(skip_utf8_validation=True)
        try:
            ws.settimeout(REQUEST_TIMEOUT)
            ws.connect(f"{self.base.replace('http', 'ws')}/ws?clientId={client}", suppress_origin=True)
            self.recorder.requests += 1
            self.post_json("/internal/logs/subscribe", {"clientId": client, "enabled": True},
                           route="PATCH /internal/logs/subscribe", kind="subscribe a socket to the log", method="PATCH")
            for target in (b"/%ff", b"/v1/jobs/%ff", b"/view?filename=%ff"):
                self.get(target, route="GET " + self.template_of(target), kind="while a socket follows the log")
            self.post_prompt(self.graph_with("9", "filename_prefix", "log\udcff"), kind="while a socket follows the log")
            ws.settimeout(0.5)
            for _ in range(5):
                try:
                    ws.recv()
                except (websocket.WebSocketTimeoutException, socket.timeout):
                    break
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            ws.close()
        self.get(b"/internal/logs", route="GET /internal/logs", kind="after odd requests")
        self.get(b"/internal/logs/raw", route="GET /internal/logs/raw", kind="after odd requests")

    # --- workflows ----------------------------------------------------------------------------

    def graph_with(self, node, field, value):
        graph = copy.deepcopy(self.graph)
        graph[node]["inputs"][field] = value
        return graph

    def post_prompt(self, graph, extra=None, kind="", small=False, target=None):
        body = dict(extra or {})  # the envelope first: a report shows the start of the body
        body.setdefault("client_id", "fuzz")
        body.setdefault("prompt", graph)
        exchange = self.post_json(target or self.route_path("/prompt"), body, route="POST /prompt", kind=kind)
        if exchange.status == 200:
            try:
                prompt_id = json.loads(exchange.response_body).get("prompt_id")
            except (ValueError, AttributeError):
                prompt_id = None
            if isinstance(prompt_id, str):
                self.prompt_ids.append(prompt_id)
                if not (small and self.graph_is_small(graph)) or self.rng.random() < 0.8:
                    self.post_json(self.route_path("/queue"), {"delete": [prompt_id]}, route="POST /queue", kind="cleanup")
                    self.post_json(self.route_path("/interrupt"), {"prompt_id": prompt_id}, route="POST /interrupt", kind="cleanup")
                self.get(self.route_path("/history/" + prompt_id).encode(), route="GET /history/{prompt}", kind="the prompt just queued")
                self.get(b"/api/jobs/" + prompt_id.encode(), route="GET /api/jobs/{job}", kind="the prompt just queued")
        return exchange

    @staticmethod
    def graph_is_small(graph):
        def small_number(value, limit):
            return isinstance(value, (int, float)) and not isinstance(value, bool) and value <= limit
        for node in graph.values() if isinstance(graph, dict) else []:
            inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
            if not isinstance(inputs, dict):
                continue
            for field, limit in (("width", 128), ("height", 128), ("batch_size", 2), ("steps", 4)):
                if field in inputs and not isinstance(inputs[field], list) and not small_number(inputs[field], limit):
                    return False
        return True

    def graph_mutations(self):
        def set_input(node, field, value):
            def mutate(graph):
                graph[node]["inputs"][field] = value
                return graph
            return mutate

        def chain(*mutations):
            def mutate(graph):
                for m in mutations:
                    graph = m(graph)
                return graph
            return mutate

        def replace(node, value):
            def mutate(graph):
                graph[node] = value
                return graph
            return mutate

        def remove(node):
            def mutate(graph):
                graph.pop(node, None)
                return graph
            return mutate

        def rename(node, new):
            def mutate(graph):
                graph[new] = graph.pop(node)
                return graph
            return mutate

        def long_chain(graph):
            previous = ["8", 0]
            for i in range(100, 300):
                graph[str(i)] = {"class_type": "ImageScale", "inputs": {"image": previous, "upscale_method": "nearest-exact",
                                                                         "width": 64, "height": 64, "crop": "disabled"}}
                previous = [str(i), 0]
            graph["9"]["inputs"]["images"] = previous
            return graph

        def many_outputs(graph):
            for i in range(100, 200):
                graph[str(i)] = {"class_type": "SaveImage", "inputs": {"filename_prefix": f"many{i}", "images": ["8", 0]}}
            return graph

        mutations = {
            "link to a missing node": set_input("3", "model", ["999", 0]),
            "link to a missing output": set_input("3", "model", ["4", 99]),
            "link with a negative output": set_input("3", "model", ["4", -1]),
            "link output huge": set_input("3", "model", ["4", Raw("1" + "0" * 400)]),
            "link output 1e400": set_input("3", "model", ["4", Raw("1e400")]),
            "link output a string": set_input("3", "model", ["4", "0"]),
            "link output a float": set_input("3", "model", ["4", 0.5]),
            "link with a number id": set_input("3", "model", [4, 0]),
            "link with a null id": set_input("3", "model", [None, 0]),
            "link of one element": set_input("3", "model", ["4"]),
            "link of three elements": set_input("3", "model", ["4", 0, 0]),
            "empty link": set_input("3", "model", []),
            "link to the wrong type": set_input("3", "model", ["5", 0]),
            "cycle of two": chain(set_input("3", "latent_image", ["8", 0])),
            "cycle through the sampler": chain(set_input("8", "samples", ["3", 0]), set_input("3", "latent_image", ["8", 0])),
            "self link": set_input("3", "model", ["3", 0]),
            "cycle of new nodes": chain(replace("20", {"class_type": "VAEDecode", "inputs": {"samples": ["21", 0], "vae": ["4", 2]}}),
                                        replace("21", {"class_type": "VAEEncode", "inputs": {"pixels": ["20", 0], "vae": ["4", 2]}}),
                                        set_input("9", "images", ["20", 0])),
            "unknown class_type": replace("3", {"class_type": "NoSuchNode", "inputs": {}}),
            "empty class_type": replace("3", {"class_type": "", "inputs": {}}),
            "class_type a number": replace("3", {"class_type": 5, "inputs": {}}),
            "class_type null": replace("3", {"class_type": None, "inputs": {}}),
            "class_type invalid utf-8": replace("3", {"class_type": RawString(b"\xff"), "inputs": {}}),
            "class_type lone surrogate": replace("3", {"class_type": "\udcff", "inputs": {}}),
            "no class_type": replace("3", {"inputs": {}}),
            "inputs missing": replace("5", {"class_type": "EmptyLatentImage"}),
            "inputs null": replace("5", {"class_type": "EmptyLatentImage", "inputs": None}),
            "inputs an array": replace("5", {"class_type": "EmptyLatentImage", "inputs": [64, 64, 1]}),
            "inputs a string": replace("5", {"class_type": "EmptyLatentImage", "inputs": "x"}),
            "node an array": replace("5", []),
            "node a string": replace("5", "x"),
            "node null": replace("5", None),
            "node a huge number": replace("5", Raw("1e400")),
            "node id empty": rename("5", ""),
            "node id lone surrogate": rename("5", "\udcff"),
            "node id of 5000 characters": rename("5", "n" * 5000),
            "node id -1": rename("5", "-1"),
            "remove the checkpoint loader": remove("4"),
            "remove the output": remove("9"),
            "remove all but the output": lambda g: {"9": g["9"]},
            "empty graph": lambda g: {},
            "graph an array": lambda g: [g["4"], g["9"]],
            "graph a string": lambda g: "x",
            "graph null": lambda g: None,
            "graph of 200 image scales": long_chain,
            "100 outputs": many_outputs,
            "missing required input": lambda g: (g["3"]["inputs"].pop("seed"), g)[1],
            "extra input": set_input("3", "no_such_input", 1),
            "seed -1": set_input("3", "seed", -1),
            "seed 2**64": set_input("3", "seed", 2 ** 64),
            "seed 2**64-1": set_input("3", "seed", 2 ** 64 - 1),
            "seed a string": set_input("3", "seed", "42"),
            "seed a float": set_input("3", "seed", 1.5),
            "seed NaN": set_input("3", "seed", Raw("NaN")),
            "steps 0": set_input("3", "steps", 0),
            "steps -5": set_input("3", "steps", -5),
            "steps 10001": set_input("3", "steps", 10001),
            "cfg negative": set_input("3", "cfg", -1e308),
            "denoise 2": set_input("3", "denoise", 2),
            "width 0": set_input("5", "width", 0),
            "width 7": set_input("5", "width", 7),
            "width 1e9": set_input("5", "width", 10 ** 9),
            "batch_size 0": set_input("5", "batch_size", 0),
            "batch_size 10**6": set_input("5", "batch_size", 10 ** 6),
            "sampler unknown": set_input("3", "sampler_name", "no_such_sampler"),
            "scheduler a list": set_input("3", "scheduler", ["normal"]),
            "scheduler an object": set_input("3", "scheduler", {"a": 1}),
            "text a number": set_input("6", "text", 5),
            "text an object": set_input("6", "text", {"a": [1, 2]}),
            "text of 1 MiB": set_input("6", "text", "lighthouse " * 95000),
            "text invalid utf-8": set_input("6", "text", RawString(b"\xff\xfe")),
            "text with NUL": set_input("6", "text", "a\u0000b"),
            "ckpt_name traversal": set_input("4", "ckpt_name", "../../../../etc/passwd"),
            "ckpt_name missing": set_input("4", "ckpt_name", "no-such-model.safetensors"),
            "ckpt_name empty": set_input("4", "ckpt_name", ""),
            "ckpt_name invalid utf-8": set_input("4", "ckpt_name", RawString(b"\xff")),
            "filename_prefix traversal": set_input("9", "filename_prefix", "../../../../tmp/fuzz-escape"),
            "filename_prefix absolute": set_input("9", "filename_prefix", "/tmp/fuzz-escape"),
            "filename_prefix empty": set_input("9", "filename_prefix", ""),
            "filename_prefix NUL": set_input("9", "filename_prefix", "a\u0000b"),
            "filename_prefix lone surrogate": set_input("9", "filename_prefix", "\udcff"),
            "filename_prefix %ff": set_input("9", "filename_prefix", "%ff"),
            "LoadImage traversal": chain(replace("10", {"class_type": "LoadImage", "inputs": {"image": "../../../../etc/passwd"}}),
                                         replace("11", {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}),
                                         set_input("3", "latent_image", ["11", 0])),
            "LoadImage NUL": chain(replace("10", {"class_type": "LoadImage", "inputs": {"image": "a\u0000.png"}}),
                                   replace("11", {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}),
                                   set_input("3", "latent_image", ["11", 0])),
            "LoadImage annotated": chain(replace("10", {"class_type": "LoadImage", "inputs": {"image": self.input_name + " [input]"}}),
                                         replace("11", {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}),
                                         set_input("3", "latent_image", ["11", 0])),
            "LoadImage output annotation traversal": chain(replace("10", {"class_type": "LoadImage", "inputs": {"image": "../../secret.key [output]"}}),
                                                           replace("11", {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}),
                                                           set_input("3", "latent_image", ["11", 0])),
            "ImageScale to 0x0": chain(replace("12", {"class_type": "ImageScale", "inputs": {"image": ["8", 0], "upscale_method": "bilinear",
                                                                                              "width": 0, "height": 0, "crop": "center"}}),
                                       set_input("9", "images", ["12", 0])),
        }
        return mutations

    def prompt_envelopes(self):
        return {
            "number a string": {"number": "x"}, "number negative": {"number": -5}, "front a string": {"front": "yes"},
            "front true": {"front": True}, "prompt_id a number": {"prompt_id": 5}, "prompt_id an object": {"prompt_id": {"a": 1}},
            "prompt_id with a slash": {"prompt_id": "a/b"}, "prompt_id reused": {"prompt_id": self.prompt_ids[0]},
            "prompt_id lone surrogate": {"prompt_id": "\udcff"}, "client_id a number": {"client_id": 5},
            "client_id invalid utf-8": {"client_id": RawString(b"\xff")}, "client_id of 5000": {"client_id": "c" * 5000},
            "extra_data an array": {"extra_data": []}, "extra_data a string": {"extra_data": "x"},
            "extra_pnginfo a string": {"extra_data": {"extra_pnginfo": "x"}},
            "extra_pnginfo workflow a string": {"extra_data": {"extra_pnginfo": {"workflow": "x"}}},
            "extra_pnginfo workflow id an object": {"extra_data": {"extra_pnginfo": {"workflow": {"id": {"a": [1]}}}}},
            "extra_pnginfo deep": {"extra_data": {"extra_pnginfo": Raw(b"[" * 5000 + b"]" * 5000)}},
            "extra_data client_id a number": {"extra_data": {"client_id": 5}},
            "extra_data create_time a string": {"extra_data": {"create_time": "x"}},
            "partial_execution_targets a string": {"partial_execution_targets": "9"},
            "partial_execution_targets unknown": {"partial_execution_targets": ["999"]},
            "partial_execution_targets mixed": {"partial_execution_targets": [1, None, "9", {"a": 1}]},
            "partial_execution_targets not an output": {"partial_execution_targets": ["3"]},
            "prompt missing": {"prompt": Raw(b"null")},
        }

    # --- JSON bodies --------------------------------------------------------------------------

    def json_routes(self):
        job = self.state["job_ids"][0]
        return [
            ("POST /prompt", self.route_path("/prompt"), "POST", {"prompt": self.graph, "client_id": "fuzz"}),
            ("POST /queue", self.route_path("/queue"), "POST", {"clear": False, "delete": ["x"]}),
            ("POST /interrupt", self.route_path("/interrupt"), "POST", {"prompt_id": "x"}),
            ("POST /history", self.route_path("/history"), "POST", {"delete": ["x"], "clear": False}),
            ("POST /free", self.route_path("/free"), "POST", {"unload_models": False, "free_memory": False}),
            ("POST /users", self.route_path("/users"), "POST", {"username": "default"}),
            ("POST /settings", self.route_path("/settings"), "POST", {"Comfy.Fuzz": 1}),
            ("POST /settings/{setting}", self.route_path("/settings/Comfy.Fuzz"), "POST", 1),
            ("PATCH /internal/logs/subscribe", "/internal/logs/subscribe", "PATCH", {"clientId": "fuzz", "enabled": False}),
            ("POST /v1/jobs", "/v1/jobs", "POST", {"model_id": self.state["model_ids"][0], "prompt": "x", "width": 64,
                                                   "height": 64, "steps": 1, "max_attempts": 1}),
            ("POST /v1/jobs/{job}/cancel", f"/v1/jobs/{job}/cancel", "POST", {}),
            ("POST /userdata/{file...}", self.route_path("/userdata/workflows%2Ffuzz.json") + "?overwrite=true", "POST", {"nodes": []}),
        ]

    def odd_bodies(self, template):
        bodies = {
            "empty": b"", "whitespace": b" \r\n\t", "null": b"null", "true": b"true", "a number": b"5", "a string": b'"x"',
            "an array": b"[]", "array of the body": b"[" + dumps(template) + b"]", "NaN": b"NaN", "Infinity": b"-Infinity",
            "trailing garbage": dumps(template) + b"}}", "two documents": dumps(template) + dumps(template),
            "comment": b"/* x */" + dumps(template), "BOM": b"\xef\xbb\xbf" + dumps(template), "invalid utf-8": b'{"a":"\xff"}',
            "invalid utf-8 key": b'{"\xff":1}', "lone surrogate escape": b'{"a":"\\ud800"}', "NUL key": b'{"\\u0000":1}',
            "duplicate keys": b'{"a":1,"a":2}', "unterminated string": b'{"a":"', "random bytes": bytes(self.rng.randrange(256) for _ in range(64)),
            "utf-16": dumps(template).decode("latin-1").encode("utf-16"), "1 MiB string": dumps({"a": "x" * (1 << 20)}),
            "100000 keys": b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(100000)) + b"}",
            "array of 200000": b"[" + b",".join([b"0"] * 200000) + b"]",
        }
        if isinstance(template, dict):
            for key in template:
                for label, value in [("null", None), ("a string", "x"), ("a number", 5), ("an array", []), ("an object", {}),
                                     ("a bool", True), ("1e400", Raw("1e400")), ("invalid utf-8", RawString(b"\xff")),
                                     ("a list of odd values", [None, 1.5, "\udcff", {}, []])]:
                    changed = dict(template)
                    changed[key] = value
                    bodies[f"{key} {label}"] = dumps(changed)
        return bodies

    # --- HTTP itself --------------------------------------------------------------------------

    def http_level_cases(self):
        job = self.state["job_ids"][0]

        def chunked(chunks):
            return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"

        cases = {}
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT", "FUZZ", "get", "G\xffT"):
            for target in (b"/prompt", b"/view?filename=x", b"/v1/jobs", b"/upload/image", b"/ws", b"/userdata/x.json"):
                cases[f"method {method} {target!r}"] = (lambda m=method, t=target: self.send(
                    m, t, b"{}" if m not in ("HEAD", "GET", "get") else None, route=f"{m} {self.template_of(t)}",
                    kind="another method", read_limit=0 if m == "HEAD" else None))
        for target in (b"http://127.0.0.1:%d/healthz" % self.recorder.port, b"*", b"healthz", b"//healthz", b"/healthz#frag", b"/./healthz",
                       b"/../healthz", b"/%2e%2e/healthz", b"/healthz/", b"/HEALTHZ", b"/api", b"/api/", b"/api/api/prompt",
                       b"/healthz?" + b"a" * 15000, b"/" + b"b" * 20000, b"/v1/jobs?" + b"&" * 4000, b"/v1/jobs?=&=&=",
                       b"/v1/jobs?limit=1&limit=2&limit=%ff", b"/view?filename=x&filename=%ff", b"/history?%", b"/history?a=%zz"):
            cases[f"target {target[:40]!r}"] = lambda t=target: self.get(t, route="GET " + self.template_of(t), kind="odd request target")
        port = self.recorder.port
        for label, headers in {
                "Host of another name": [("Host", "evil.example")], "Host with another port": [("Host", "127.0.0.1:1")],
                "Host localhost": [("Host", f"localhost:{port}")], "Host [::1]": [("Host", f"[::1]:{port}")],
                "Host empty": [("Host", "")], "Host invalid utf-8": [("Host", b"\xff\xfe")], "Host of 300": [("Host", "h" * 300)],
                "Host with userinfo": [("Host", f"user@127.0.0.1:{port}")], "Host with a path": [("Host", f"127.0.0.1:{port}/x")],
                "two Host headers": [("Host", f"127.0.0.1:{port}"), ("Host", "evil.example")],
                "Origin of another site": [("Origin", "http://evil.example")], "Origin null": [("Origin", "null")],
                "Origin of this service": [("Origin", f"http://127.0.0.1:{port}")], "Origin invalid utf-8": [("Origin", b"http://\xff")],
                "Origin without scheme": [("Origin", f"127.0.0.1:{port}")], "Origin of 5000": [("Origin", "http://" + "o" * 5000)],
                "two Origin headers": [("Origin", f"http://127.0.0.1:{port}"), ("Origin", "http://evil.example")]}.items():
            for method, target in (("GET", b"/object_info/KSampler"), ("POST", b"/prompt"), ("POST", b"/v1/jobs")):
                cases[f"{label} {method} {target!r}"] = (lambda h=headers, m=method, t=target: self.send(
                    m, t, None if m == "GET" else dumps({"prompt": {}} if t == b"/prompt" else {"model_id": "x"}),
                    headers=h, route=f"{m} {self.template_of(t)}", kind=f"odd Host/Origin: {h[0][0]}"))
        for origin in ("http://evil.example", "null", "http://\xff"):
            cases[f"ws Origin {origin}"] = lambda o=origin: self.ws_session(b"clientId=fuzz-origin", [("text", b"{}")],
                                                                            kind="WebSocket from another Origin", origin=o)
        cases["header over 16 KB"] = lambda: self.send("GET", b"/healthz", headers=[("X-Big", b"a" * 20000)], route="GET /healthz", kind="header over the limit")
        cases["500 headers"] = lambda: self.send("GET", b"/healthz", headers=[(f"X-H{i}", "v") for i in range(500)], route="GET /healthz", kind="many headers")
        cases["header name invalid"] = lambda: self.send("GET", b"/healthz", headers=[(b"X-\xff", b"v")], route="GET /healthz", kind="invalid header name")
        cases["Content-Length smaller than the body"] = lambda: self.send(
            "POST", b"/prompt", dumps({"prompt": self.graph}), headers=[("Content-Length", "10")], route="POST /prompt", kind="short Content-Length")
        for value in (b"-1", b"abc", b"1" + b"0" * 30, b"18446744073709551615", b"2, 2", b"1, 2", b"+2", b" 2 ", b"0x2"):
            cases[f"Content-Length {value[:10]!r}"] = lambda v=value: self.send(
                "POST", b"/free", b"{}", headers=[("Content-Length", v)], route="POST /free", kind="odd Content-Length")
        cases["two Content-Length"] = lambda: self.send("POST", b"/free", b"{}", headers=[("Content-Length", "2"), ("Content-Length", "3")],
                                                        route="POST /free", kind="two Content-Length headers")
        cases["chunked body"] = lambda: self.send("POST", b"/free", chunked([b"{", b"}"]), headers=[("Transfer-Encoding", "chunked")],
                                                  route="POST /free", kind="chunked body")
        cases["chunked prompt"] = lambda: self.send("POST", b"/prompt", chunked([dumps({"prompt": self.graph})[i:i + 7] for i in range(0, 2000, 7)]),
                                                    headers=[("Transfer-Encoding", "chunked")], route="POST /prompt", kind="chunked body")
        for label, body in {"bad chunk size": b"zz\r\n{}\r\n0\r\n\r\n", "huge chunk size": b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
                            "negative chunk size": b"-2\r\n{}\r\n0\r\n\r\n", "chunk extension": b"2;a=\xff\r\n{}\r\n0\r\n\r\n",
                            "trailer": b"2\r\n{}\r\n0\r\nX-T: \xff\r\n\r\n"}.items():
            cases[f"chunked {label}"] = lambda b=body, l=label: self.send("POST", b"/free", b, headers=[("Transfer-Encoding", "chunked")],
                                                                          route="POST /free", kind=f"chunked: {l}")
        cases["Content-Length and chunked"] = lambda: self.send("POST", b"/free", chunked([b"{}"]),
                                                                headers=[("Transfer-Encoding", "chunked"), ("Content-Length", "2")],
                                                                route="POST /free", kind="Content-Length and chunked")
        cases["Transfer-Encoding gzip"] = lambda: self.send("POST", b"/free", b"{}", headers=[("Transfer-Encoding", "gzip"), ("Content-Length", "2")],
                                                            route="POST /free", kind="unknown transfer coding")
        cases["Expect 100-continue"] = lambda: self.send("POST", b"/free", b"{}", headers=[("Expect", "100-continue")], route="POST /free", kind="Expect")
        cases["Expect odd"] = lambda: self.send("POST", b"/free", b"{}", headers=[("Expect", b"\xff")], route="POST /free", kind="Expect")
        cases["body over 32 MiB"] = lambda: self.send("POST", b"/v1/jobs", b"[" + b" " * (33 * 1024 * 1024) + b"]", route="POST /v1/jobs", kind="body over the limit")
        cases["Upgrade on a plain route"] = lambda: self.send("GET", b"/healthz", headers=[("Connection", "Upgrade"), ("Upgrade", "h2c")],
                                                              route="GET /healthz", kind="Upgrade header")
        cases["websocket handshake wrong version"] = lambda: self.send(
            "GET", b"/ws", headers=[("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "99"),
                                    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")], route="WS /ws", kind="bad handshake", timeout=5)
        cases["websocket handshake no key"] = lambda: self.send(
            "GET", b"/ws", headers=[("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
            route="WS /ws", kind="bad handshake", timeout=5)
        cases["events with Last-Event-ID and after"] = lambda: self.get(f"/v1/jobs/{job}/events?after=1".encode(), route="GET /v1/jobs/{job}/events",
                                                                        kind="both resume points", headers=[("Last-Event-ID", "999999")])
        cases["files signature odd"] = lambda: [self.get(a["path"].encode() + b"?expires=" + e + b"&sig=" + s, route="GET /v1/files/{key...}", kind="odd signature")
                                                for a in self.state["artifacts"][:1]
                                                for e, s in ((b"0", b""), (b"-1", b"x"), (a["expires"].encode(), b"%ff"), (b"1" + b"0" * 400, a["sig"].encode()),
                                                             (a["expires"].encode(), a["sig"].encode() + b"00"))]
        return cases

    # --- stored state -------------------------------------------------------------------------

    def probe_state(self):
        """Reads every route that lists stored state: a request that was accepted may have stored
        something that breaks them."""
        for target in (b"/object_info", b"/object_info/LoadImage", b"/v2/userdata", b"/userdata?dir=workflows&full_info=true",
                       b"/userdata?dir=.&recurse=true&split=true", b"/settings", b"/history", b"/history?max_items=5", b"/queue",
                       b"/api/jobs", b"/api/jobs?status=pending,in_progress,completed,failed,cancelled", b"/v1/jobs",
                       b"/internal/logs/raw", b"/prompt", b"/experiment/models/checkpoints", b"/models/checkpoints",
                       b"/users", b"/system_stats", b"/metrics", b"/readyz"):
            self.get(target, route="GET " + self.template_of(target), kind="reading stored state after fuzzing")
        for prompt_id in self.prompt_ids[-2:]:
            self.get(b"/history/" + prompt_id.encode(), route="GET /history/{prompt}", kind="reading stored state after fuzzing")

    # --- random cases -------------------------------------------------------------------------

    def random_case(self):
        """One random request of a random family: (name, action)."""
        family = self.rng.choices(["route", "graph", "upload", "ws", "body", "envelope"], weights=[5, 3, 2, 1, 3, 1])[0]
        if family == "route":
            method, template, has_api = self.rng.choice(ROUTES)
            if self.rng.random() < 0.05:
                method = self.rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS", "POST", "GET"])
            prefix = b"/api" if has_api and self.rng.random() < 0.5 else b""
            target = prefix + self.fill(template) + self.random_query(template)
            body = None
            if method in ("POST", "PATCH", "PUT"):
                body = dumps(self.random_json()) if self.rng.random() < 0.8 else bytes(self.rng.randrange(256) for _ in range(self.rng.randint(0, 80)))
            if "/upload/" in template and body is not None and self.rng.random() < 0.7:
                return ("random upload", lambda: self.upload(self.rng.choice([b"r.png", b"\xff.png", b"../r.png", b"a" * 400 + b".png"]),
                                                             subfolder=self.rng.choice([None, b"", b"..", b"sub", b"\xff"]),
                                                             mask="mask" in template, kind="random upload"))
            return (f"random {method} {template}", lambda: self.send(method, target, body, route=f"{method} {template}",
                                                                     kind="random path, query and body", stream_seconds=1.0))
        if family == "graph":
            graph = copy.deepcopy(self.graph)
            for _ in range(self.rng.randint(1, 3)):
                graph = self.random_graph_mutation(graph)
            return ("random graph", lambda: self.post_prompt(graph, kind="randomly mutated workflow", small=True)
                    if self.rng.random() < 0.8 else self.post_json("/v1/jobs", {"workflow": graph, "max_attempts": 1},
                                                                 route="POST /v1/jobs", kind="randomly mutated workflow job"))
        if family == "upload":
            name = self.rng.choice([b"u.png", self.rng.choice(INVALID_UTF8) + b".png", b"../" * self.rng.randint(1, 4) + b"u.png",
                                    b"u" * self.rng.choice([100, 255, 256, 300, 1000, 5000]) + b".png", b"a\x00.png"])
            return ("random upload", lambda: self.upload(name, subfolder=self.rng.choice([None, b"", b"..", b"sub/dir", b"\xff"]),
                                                         folder_type=self.rng.choice([None, b"input", b"temp", b"output", b"x"]),
                                                         mask=self.rng.random() < 0.3, kind="random upload"))
        if family == "ws":
            sets = list(self.ws_frame_sets().items())
            frames = [self.rng.choice(sets)[1][0] for _ in range(self.rng.randint(1, 4))]
            return ("random ws", lambda: self.ws_session(b"clientId=fuzz-r%d" % self.next_client(), frames, kind="random frames"))
        if family == "body":
            route, target, method, template = self.rng.choice(self.json_routes())
            value = self.mutate_json(copy.deepcopy(template))
            return (f"random body {route}", lambda: self.post_json(target, value, route=route, kind="randomly mutated body", method=method))
        envelope = {key: self.random_json() for key in self.rng.sample(
            ["number", "front", "prompt_id", "client_id", "extra_data", "partial_execution_targets"], self.rng.randint(1, 3))}
        return ("random envelope", lambda: self.post_prompt(self.graph, extra=envelope, kind="random prompt envelope"))

    def mutate_json(self, value, depth=0):
        if isinstance(value, dict) and value and self.rng.random() < 0.8:
            key = self.rng.choice(list(value))
            value[key] = self.mutate_json(value[key], depth + 1) if self.rng.random() < 0.5 else self.random_json()
            if self.rng.random() < 0.2:
                value[self.odd_string()[:30]] = self.random_json()
            return value
        if isinstance(value, list) and value and self.rng.random() < 0.8:
            index = self.rng.randrange(len(value))
            value[index] = self.mutate_json(value[index], depth + 1)
            return value
        return self.random_json()

    def random_graph_mutation(self, graph):
        ids = list(graph)
        if not ids:
            return graph
        node_id = self.rng.choice(ids)
        node = graph[node_id]
        roll = self.rng.random()
        if roll < 0.45 and isinstance(node, dict) and isinstance(node.get("inputs"), dict) and node["inputs"]:
            field = self.rng.choice(list(node["inputs"]))
            node["inputs"][field] = self.random_json()
        elif roll < 0.6 and isinstance(node, dict) and isinstance(node.get("inputs"), dict):
            field = self.rng.choice(list(node["inputs"]) or ["x"])
            node["inputs"][field] = [self.rng.choice(ids + ["999", "", "-1"]), self.rng.choice([0, 1, 2, 3, 99, -1])]
        elif roll < 0.7:
            graph[node_id] = self.random_json()
        elif roll < 0.8:
            graph.pop(node_id)
        elif roll < 0.9 and isinstance(node, dict):
            node["class_type"] = self.rng.choice(["KSampler", "VAEDecode", "SaveImage", "LoadImage", "ImageScale", "KSamplerAdvanced",
                                                  "PreviewImage", "VAEEncode", "Nope", "", 5, None])
        else:
            graph[self.odd_string()[:50] or "x"] = {"class_type": self.rng.choice(["SaveImage", "PreviewImage", "ImageScale"]),
                                                    "inputs": {"images": [self.rng.choice(ids), 0], "image": [node_id, 0],
                                                               "filename_prefix": self.odd_string()}}
        return graph

    # --- running ------------------------------------------------------------------------------

    def wanted(self, name):
        if self.only and not self.only.search(name):
            return False
        return not (self.skip and self.skip.search(name))

    def run_case(self, name, action):
        if not self.wanted(name):
            self.skipped += 1
            return
        self.cases += 1
        action()
        if self.cases % 40 == 0:
            self.probe_state()

    def run(self):
        print(f"[comfy] seed {self.seed}", flush=True)
        try:
            cases = self.corpus()
            self.rng.shuffle(cases)
            print(f"[comfy] {len(cases)} adversarial cases, then random ones until the time is up", flush=True)
            for name, action in cases:
                if self.recorder.out_of_time():
                    break
                self.run_case(name, action)
            self.probe_state()
            done = sum(1 for name, _ in cases if self.wanted(name))
            random_wanted = self.wanted("random")  # FUZZ_ONLY=... may leave the random cases out
            if not self.recorder.out_of_time():
                print(f"[comfy] the {done} adversarial cases took {time.monotonic() - self.recorder.started:.0f} s "
                      f"({self.recorder.requests} requests)" + ("; random cases from now on" if random_wanted else ""),
                      flush=True)
            while random_wanted and not self.recorder.out_of_time():
                name, action = self.random_case()
                self.run_case(name, action)
            self.probe_state()
        except ServerDown:
            pass
        if self.skipped:
            print(f"[comfy] {self.skipped} cases left out by FUZZ_ONLY/FUZZ_SKIP", flush=True)
        self.recorder.summary()
        return self.recorder


if __name__ == "__main__":
    run_fuzzer_from_command_line(ComfyFuzzer, __doc__)
