"""Shared pieces of the fuzzers in this folder: sending requests to the service under test,
telling a crash or a hang from an answer, and recording what failed so it can be replayed.

A fuzzer never restarts the service: a crash ends the run and is reported as a finding."""
import collections
import http.client
import json
import os
import re
import socket
import sys
import time

# The end-to-end tests' ComfyUI text-to-image graph is the valid graph the fuzzers mutate.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from service_support import comfy_graph as text_to_image_graph  # noqa: E402,F401

REQUEST_TIMEOUT = float(os.environ.get("FUZZ_REQUEST_TIMEOUT", "20"))
SHOWN_BYTES = 400  # how much of a body or target a report shows


class ServerDown(Exception):
    """The service exited or stopped answering: nothing more can be learned from this run."""


def short_repr(value, limit=SHOWN_BYTES):
    """repr() of bytes/str/objects, cut to `limit` characters with the full size noted."""
    if value is None:
        return "None"
    if isinstance(value, (bytes, bytearray)):
        size = len(value)
        shown = repr(bytes(value[:limit]))
        return shown if size <= limit else f"{shown} ... ({size} bytes in all)"
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, str):
        shown = repr(value[:limit])
        return shown if len(value) <= limit else f"{shown} ... ({len(value)} characters in all)"
    return text if len(text) <= limit else text[:limit] + f" ... ({len(text)} characters in all)"


def server_alive(pid):
    """Whether process `pid` still runs (a zombie, exited but not yet reaped, does not)."""
    if not pid:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return fields[0] not in (b"Z", b"X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def error_signature(body):
    """A short, stable description of a 5xx answer: its error code and message with names,
    numbers and quoted values blanked, so that one bug hit with many inputs counts once."""
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            text = " ".join(str(parsed.get(key, "")) for key in ("code", "message", "error") if key in parsed)
    except ValueError:
        pass
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\b[0-9a-f]{8}-[0-9a-f-]{27,}\b", "<id>", text)
    text = re.sub(r"(?<![.\w])\d+(?![.\w])", "N", text)
    return " ".join(text.split())[:160]


class Exchange:
    """One request as sent and what came back (status None: no HTTP answer)."""

    def __init__(self, method, target, headers, body, route, kind):
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.route = route
        self.kind = kind
        self.status = None
        self.response_body = b""
        self.response_headers = {}
        self.error = None
        self.seconds = 0.0
        self.correlation_id = ""

    def reproducer(self):
        target = self.target
        if isinstance(target, (bytes, bytearray)):
            target = target.decode("latin-1")
        headers = {name: (value.decode("latin-1") if isinstance(value, bytes) else value)
                   for name, value in self.headers}
        return {"method": self.method, "path": short_repr(target), "headers": short_repr(headers, 400),
                "body": short_repr(self.body), "kind": self.kind}


class Recorder:
    """Counts requests and keeps findings: failures (5xx, crash, timeout) and notes (answers that
    are wrong but not failures, e.g. a response that does not match the API description)."""

    def __init__(self, fuzzer, base_url, pid, seed, seconds, server_log=None):
        self.fuzzer = fuzzer
        self.server_log = server_log
        self.log_offset = 0
        self.log_errors = {}  # correlation id -> the error the service logged for it
        self.base_url = base_url.rstrip("/")
        self.host, port = self.base_url.split("://", 1)[1].split(":")
        self.port = int(port)
        self.pid = pid
        self.seed = seed
        self.started = time.monotonic()
        self.deadline = self.started + seconds
        self.requests = 0
        self.failures = collections.OrderedDict()  # key -> finding
        self.notes = collections.OrderedDict()
        self.recent = collections.deque(maxlen=4)  # the last exchanges, for crash context
        self.changes = collections.deque(maxlen=4)  # the last requests that may have changed state
        self.down = None  # why the service is gone, once it is
        self.statuses = collections.defaultdict(collections.Counter)  # route -> status -> count

    # --- time ---------------------------------------------------------------------------------

    def time_left(self):
        return self.deadline - time.monotonic()

    def out_of_time(self):
        return self.time_left() <= 0

    # --- findings -----------------------------------------------------------------------------

    def _add(self, table, key, finding):
        if key in table:
            table[key]["count"] += 1
            return
        finding["count"] = 1
        table[key] = finding

    def fail(self, route, outcome, exchange=None, detail="", context=(), signature=""):
        key = (route, outcome, signature)
        finding = {"fuzzer": self.fuzzer, "route": route, "outcome": outcome, "detail": detail,
                   "kind": exchange.kind if exchange else "", "seed": self.seed,
                   "request": exchange.reproducer() if exchange else None,
                   "context": [e.reproducer() for e in context]}
        if key not in self.failures:
            print(f"[{self.fuzzer}] FAILURE {route}: {outcome} {detail}".rstrip(), flush=True)
        self._add(self.failures, key, finding)

    def note(self, route, what, exchange=None, detail=""):
        key = (route, what)
        self._add(self.notes, key, {"fuzzer": self.fuzzer, "route": route, "what": what, "detail": detail,
                                    "request": exchange.reproducer() if exchange else None})

    # --- the service's log ----------------------------------------------------------------------

    def read_log(self):
        """Reads what the service logged since the last call; returns the new lines."""
        if not self.server_log:
            return []
        try:
            with open(self.server_log, "rb") as log_file:
                log_file.seek(self.log_offset)
                data = log_file.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1
        self.log_offset += end
        lines = data[:end].decode("utf-8", "replace").splitlines()
        for line in lines:
            found = re.search(r"answered (\d+) \(correlation id ([^)]*)\)(?:: (.*))?", line)
            if found:
                self.log_errors[found.group(2)] = found.group(3) or ""
        return lines

    def logged_error(self, correlation_id):
        """What the service logged about the request with this X-Request-ID ("" if nothing)."""
        for _ in range(5):
            self.read_log()
            if self.log_errors.get(correlation_id):
                return self.log_errors[correlation_id]
            time.sleep(0.05)
        return ""

    def log_tail(self, count=6):
        if not self.server_log:
            return ""
        try:
            with open(self.server_log, "rb") as log_file:
                lines = [line for line in log_file.read().decode("utf-8", "replace").splitlines() if line.strip()]
        except OSError:
            return ""
        return " | ".join(line[:300] for line in lines[-count:])

    # --- liveness -----------------------------------------------------------------------------

    def healthy(self, timeout=5.0):
        """GET /healthz answers 200 in time."""
        try:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            connection.request("GET", "/healthz")
            ok = connection.getresponse().status == 200
            connection.close()
            return ok
        except (OSError, http.client.HTTPException):
            return False

    def check_alive(self, exchange, route):
        """After `exchange`: raise ServerDown (with the finding recorded) when the process has
        exited. A crash may come a moment after the answer, so it looks twice."""
        for _ in range(2):
            if not server_alive(self.pid):
                context = [e for e in self.recent if e is not exchange]
                time.sleep(0.2)
                self.fail(route, "crash: the service process exited", exchange,
                          "while answering this request (or right after it); its log ends: " + self.log_tail(),
                          context=context)
                self.down = "the service process exited"
                raise ServerDown(self.down)
            if exchange.status is not None:
                return
            time.sleep(0.3)

    def after_transport_error(self, exchange, route):
        """No HTTP answer came: a crash, a hang, or a connection the service closed on purpose."""
        self.check_alive(exchange, route)
        if isinstance(exchange.error, (socket.timeout, TimeoutError)):
            self.fail(route, "timeout: no answer within %.0f s" % REQUEST_TIMEOUT, exchange,
                      context=list(self.recent)[:-1])
            if not self.healthy():
                self.check_alive(exchange, route)
                self.down = "the service stopped answering (GET /healthz timed out)"
                self.fail(route, "hang: the service stopped answering", exchange, self.down)
                raise ServerDown(self.down)
            return
        # The connection was closed without an answer. Acceptable for requests the service may cut
        # short (it answers 413/431 and closes while the client still sends); a failure when the
        # service does not answer /healthz afterwards.
        if not self.healthy():
            self.check_alive(exchange, route)
            self.down = "the service stopped answering after a dropped connection"
            self.fail(route, "hang: the service stopped answering", exchange, self.down)
            raise ServerDown(self.down)
        self.note(route, "connection closed without an answer", exchange, type(exchange.error).__name__)

    def judge(self, exchange, route):
        """Records a 5xx as a failure (one finding per route and error message)."""
        if exchange.status is not None and exchange.status >= 500:
            logged = self.logged_error(exchange.correlation_id) if exchange.correlation_id else ""
            answer = short_repr(exchange.response_body[:300].decode("utf-8", "replace"), 200)
            self.fail(route, f"HTTP {exchange.status}", exchange,
                      answer + (f"; the service logged: {logged[:400]}" if logged else ""),
                      context=list(self.changes), signature=error_signature(logged or exchange.response_body))
        if exchange.status is not None and b"root:x:0:0:" in exchange.response_body:
            self.fail(route, "file outside the service's folders served", exchange,
                      "the answer holds /etc/passwd")

    # --- sending ------------------------------------------------------------------------------

    def send(self, method, target, headers=(), body=None, route=None, kind="", timeout=None,
             read_limit=None, stream_seconds=None, judge=True):
        """Sends one request exactly as given (target and header values may be bytes with any
        content) on a new connection; returns the Exchange. Raises ServerDown when the service is
        gone. `stream_seconds`: read an endless (event stream) answer only that long."""
        if self.down:
            raise ServerDown(self.down)
        if isinstance(target, str):
            target = target.encode("utf-8", "surrogateescape")
        headers = list(headers)
        given = [value for name, value in headers if str(name).lower() == "x-request-id"]
        correlation_id = f"fuzz-{self.fuzzer}-{self.requests + 1}"
        if not given:
            headers.append(("X-Request-ID", correlation_id))
        elif isinstance(given[0], str) and re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", given[0]):
            correlation_id = given[0]
        else:
            correlation_id = ""
        exchange = Exchange(method, target, headers, body, route or f"{method} {target[:60]!r}", kind)
        exchange.correlation_id = correlation_id
        route = exchange.route
        self.requests += 1
        self.recent.append(exchange)
        started = time.monotonic()
        connection = RawHTTPConnection(self.host, self.port, timeout=timeout or REQUEST_TIMEOUT)
        try:
            names = {str(name).lower() for name, _ in headers}
            connection.putrequest(method, target.decode("latin-1"), skip_accept_encoding=True,
                                  skip_host="host" in names)  # a case that sends its own Host
            for name, value in headers:
                connection.putheader(name, value)
            if body is not None and "content-length" not in names and "transfer-encoding" not in names:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            sock = connection.sock  # the connection forgets it once an answer without a length begins
            response = connection.getresponse()
            exchange.status = response.status
            exchange.response_headers = {k.lower(): v for k, v in response.getheaders()}
            if stream_seconds is not None and "text/event-stream" in exchange.response_headers.get("content-type", ""):
                exchange.response_body = read_stream_for(response, sock, stream_seconds)
            else:
                exchange.response_body = response.read() if read_limit is None else response.read(read_limit)
        except (OSError, http.client.HTTPException) as error:
            exchange.error = error
        finally:
            exchange.seconds = time.monotonic() - started
            connection.close()
        self.statuses[route][exchange.status or "no answer"] += 1
        if exchange.error is not None and exchange.status is None:
            self.after_transport_error(exchange, route)
        else:
            if exchange.error is not None:  # the answer began, then the connection broke
                self.note(route, "answer cut short", exchange, type(exchange.error).__name__)
            self.check_alive(exchange, route)
            if judge:
                self.judge(exchange, route)
            if method in ("POST", "PUT", "PATCH", "DELETE"):  # may have stored something, even if it failed
                self.changes.append(exchange)
        return exchange

    # --- results ------------------------------------------------------------------------------

    def results(self):
        return {"fuzzer": self.fuzzer, "seed": self.seed, "requests": self.requests,
                "seconds": round(time.monotonic() - self.started, 1), "down": self.down,
                "failures": list(self.failures.values()), "notes": list(self.notes.values()),
                "statuses": {route: {str(k): v for k, v in counts.most_common()} for route, counts in sorted(self.statuses.items())}}

    def write_results(self, path):
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(self.results(), out, indent=1)

    def summary(self):
        print(f"[{self.fuzzer}] seed {self.seed}: {self.requests} requests in "
              f"{time.monotonic() - self.started:.0f} s, {len(self.failures)} distinct failures, "
              f"{len(self.notes)} distinct notes" + (f"; {self.down}" if self.down else ""), flush=True)


class RawHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection that sends the request target and header values byte for byte (latin-1
    text stands for bytes), so requests can carry invalid UTF-8, NUL bytes and '../'."""

    def _validate_path(self, url):
        pass

    def _encode_request(self, request):
        return request.encode("latin-1")

    def putheader(self, header, *values):
        # http.client refuses values with CR/LF; send what the fuzzer asks for, except line breaks
        # that would end the header block (the service would read them as a new header).
        cleaned = [value if isinstance(value, bytes) else str(value).encode("latin-1", "replace")
                   for value in values]
        cleaned = [value.replace(b"\r", b"").replace(b"\n", b"") for value in cleaned]
        header = header.encode("latin-1") if isinstance(header, str) else header
        line = header + b": " + b"\r\n\t".join(cleaned)
        self._output(line)


def read_stream_for(response, sock, seconds):
    """Reads an endless answer (Server-Sent Events) for at most `seconds`, then stops."""
    deadline = time.monotonic() + seconds
    chunks = []
    sock.settimeout(min(seconds, REQUEST_TIMEOUT))
    while time.monotonic() < deadline:
        try:
            chunk = response.read1(65536)
        except (socket.timeout, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def load_state(path):
    """The ids and names that prepare.py found on the service."""
    with open(path, encoding="utf-8") as state:
        return json.load(state)


def log(message):
    print(message, file=sys.stderr, flush=True)


def make_png(width=8, height=8, color=(200, 40, 40, 255), declared=None, truncate=False):
    """A small RGBA PNG; `declared` (w, h) writes other dimensions into its header than its pixel
    data has, `truncate` cuts the image data short."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(color) * width
    pixels = zlib.compress(row * height)
    if truncate:
        pixels = pixels[: max(1, len(pixels) // 2)]
    dims = declared or (width, height)
    header = struct.pack(">IIBBBBB", dims[0], dims[1], 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def run_fuzzer_from_command_line(fuzzer_class, doc):
    """Runs `fuzzer_class(args, state).run()` with the arguments scripts/fuzz passes, writes its
    results and exits non-zero when it recorded a failure."""
    import argparse
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int,
                        default=int(os.environ.get("FUZZ_SEED", time.time_ns() % 1_000_000)))
    parser.add_argument("--pid", type=int, default=0)
    parser.add_argument("--results")
    parser.add_argument("--server-log", help="the service's output, for the errors it logs")
    args = parser.parse_args()
    recorder = fuzzer_class(args, load_state(args.state)).run()
    recorder.write_results(args.results)
    sys.exit(1 if recorder.failures else 0)
