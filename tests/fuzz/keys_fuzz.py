"""Fuzzes the service once API keys exist: every route family (the /v1 operations from the
service's OpenAPI document, the ComfyUI routes, /ws, the sign-in page) with a valid user key, an
admin key, a revoked key, no key, and mangled credentials (odd Authorization schemes, huge or
binary tokens, forged session cookies), by header, ?token= and cookie.

A 5xx, a crash or a hang is a failure, as everywhere; so is any protected route that answers
without a valid key (anything but 401), a user key reaching an admin-only route (anything but
403), or a user key reading the admin's jobs (anything but 404). Keys come from the state file:
"keys" {"admin", "user", "revoked"}, made by scripts/fuzz with `dreamforge keys create`.

Usage: keys_fuzz.py --base-url URL --state STATE_JSON --seconds N [--seed N] [--pid PID]
                    [--results JSON] [--server-log FILE]"""
import random
import urllib.parse

import requests

from fuzz_common import Recorder, ServerDown, run_fuzzer_from_command_line

# ComfyUI routes (each also under /api) and what they need: "key", or "admin" for admin-only.
COMFY_ROUTES = [("GET", "/prompt", "key"), ("POST", "/prompt", "key"), ("GET", "/queue", "key"),
                ("POST", "/queue", "key"), ("POST", "/interrupt", "key"), ("GET", "/history", "key"),
                ("GET", "/history/{prompt_id}", "key"), ("POST", "/history", "key"),
                ("GET", "/object_info", "key"), ("GET", "/system_stats", "key"),
                ("GET", "/view", "key"), ("POST", "/upload/image", "key"),
                ("GET", "/settings", "key"), ("GET", "/userdata?dir=workflows", "key"),
                ("GET", "/users", "key"), ("GET", "/models", "key"), ("GET", "/embeddings", "key"),
                ("POST", "/free", "admin"), ("POST", "/users", "admin")]
OTHER_ROUTES = [("GET", "/api/jobs", "key"), ("GET", "/api/jobs/{prompt_id}", "key"),
                ("GET", "/internal/logs", "admin"), ("GET", "/internal/logs/raw", "admin"),
                ("GET", "/metrics", "admin"), ("GET", "/ws", "key"), ("GET", "/user.css", "key")]
OPEN_ROUTES = [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/v1/openapi.json"),
               ("GET", "/login"), ("POST", "/login"), ("POST", "/logout")]
CREDENTIALS = ["none", "revoked", "garbage", "user", "admin"]


class KeysFuzzer:
    def __init__(self, args, state):
        self.base = args.base_url.rstrip("/")
        self.state = state
        self.keys = state["keys"]
        self.rng = random.Random(args.seed)
        self.recorder = Recorder("keys", self.base, args.pid, args.seed, args.seconds, args.server_log)
        self.routes = self.v1_routes() + [(m, p, need) for m, p, need in COMFY_ROUTES] + \
            [(m, "/api" + p, need) for m, p, need in COMFY_ROUTES] + OTHER_ROUTES

    def v1_routes(self):
        """The /v1 operations of the service's own document; those with a security requirement
        need a key (/metrics and model downloads need an admin's)."""
        document = requests.get(f"{self.base}/v1/openapi.json",
                                headers={"Authorization": f"Bearer {self.keys['admin']}"}, timeout=20).json()
        routes = []
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if operation.get("security"):
                    admin = path in ("/metrics", "/v1/models:download")
                    routes.append((method.upper(), path, "admin" if admin else "key"))
        return routes

    # --- what is sent ---------------------------------------------------------------------------

    def concrete(self, path):
        job_ids = self.state["job_ids"]  # made before the keys: the default user's, not the user key's
        values = {"{id}": self.rng.choice(job_ids + self.state["model_ids"] + ["nope", "x" * 300]),
                  "{prompt_id}": self.rng.choice(self.state["prompt_ids"] + ["nope"]),
                  "{key}": "dreamforge/default/jobs/x/y.png"}
        for name, value in values.items():
            path = path.replace(name, urllib.parse.quote(value, safe=""))
        return path

    def credential_headers(self, credential, path):
        """(headers, extra query, whether a key went as a valid carrier) for one credential sent
        one way: a Bearer header, ?token= (not taken by /v1), a forged session cookie, or an odd
        Authorization scheme (never taken)."""
        token = {"revoked": self.keys["revoked"], "user": self.keys["user"], "admin": self.keys["admin"],
                 "garbage": self.rng.choice(["dfk_", "dfk_0000000000000000_" + "0" * 64, "x" * 5000,
                                             self.keys["user"][:-1] + "0", self.keys["user"] + "x",
                                             "\u00e9\u00e9", "%00", self.keys["revoked"].upper()])}.get(credential)
        if token is None:
            return [], "", False
        way = self.rng.choice(["bearer", "bearer", "token", "cookie", "odd"])
        if way == "token":
            header_only = path.startswith("/v1/") or path.startswith("/metrics")
            return [], "token=" + urllib.parse.quote(token, safe=""), not header_only
        if way == "cookie":
            return [("Cookie", "dreamforge_session=" + token + ".9999999999." + "0" * 64)], "", False
        if way == "odd":
            scheme = self.rng.choice(["Basic ", "Token ", "Bearer", "bearer\t", "Bearer Bearer ", ""])
            return [("Authorization", (scheme + token).encode("utf-8", "surrogateescape"))], "", False
        return [("Authorization", ("Bearer " + token).encode("utf-8", "surrogateescape"))], "", True

    def body_for(self, method, path):
        if method != "POST":
            return None, []
        if path.endswith("/login"):
            key = self.rng.choice([self.keys["user"], self.keys["revoked"], "", "x" * 3000])
            return ("key=" + urllib.parse.quote(key)).encode(), [("Content-Type", "application/x-www-form-urlencoded")]
        body = self.rng.choice([b"{}", b'{"clear": true}', b'{"prompt": {}}', b"not json", b""])
        return body, [("Content-Type", "application/json")]

    # --- judging --------------------------------------------------------------------------------

    def expect(self, exchange, route, credential, need, path, carried):
        status = exchange.status
        if status is None or status >= 500:
            return  # the recorder judged it
        valid = carried and credential in ("user", "admin")
        if not valid and status not in (401, 400, 413):
            self.recorder.fail(route, f"reachable without a valid key ({credential}): HTTP {status}", exchange)
        if valid and credential == "user" and need == "admin" and status != 403:
            self.recorder.fail(route, f"admin-only route answered a user key with HTTP {status}", exchange)
        if valid and credential == "user" and path.startswith("/v1/jobs/") and 200 <= status < 300 and \
                any(job_id in path for job_id in self.state["job_ids"]):
            self.recorder.fail(route, f"a user key reached another user's job: HTTP {status}", exchange)

    def one_request(self):
        if self.rng.random() < 0.1:
            method, path = self.rng.choice(OPEN_ROUTES)
            need = None
        else:
            method, path, need = self.rng.choice(self.routes)
        credential = self.rng.choice(CREDENTIALS)
        concrete = self.concrete(path)
        headers, query, carried = self.credential_headers(credential, concrete)
        body, body_headers = self.body_for(method, concrete)
        target = concrete + (("&" if "?" in concrete else "?") + query if query else "")
        route = f"{method} {path} [{credential}]"
        exchange = self.recorder.send(method, target, headers + body_headers, body, route=route,
                                      kind=credential, stream_seconds=1.0)
        if need is not None:
            self.expect(exchange, route, credential, need, concrete, carried)

    def run(self):
        try:
            while not self.recorder.out_of_time():
                self.one_request()
        except ServerDown:
            pass
        print(f"[keys] {self.recorder.requests} requests", flush=True)
        return self.recorder


if __name__ == "__main__":
    run_fuzzer_from_command_line(KeysFuzzer, __doc__)
