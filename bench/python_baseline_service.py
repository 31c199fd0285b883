"""The peer of bench/job_service_bench.py: a plain-Python job service of the kind Dream Forge
replaces (stdlib ThreadingHTTPServer, sqlite3 in WAL mode, one thread per connection).

POST /v1/jobs parses the same JSON body as Dream Forge, checks a few fields, inserts the job row
and its job_queued event in one transaction and answers 201 with the id. With --runner it also
keeps one dreamforge-runner warm, runs queued jobs in order through the runner protocol, records
the runner's events in SQLite, and streams them on GET /v1/jobs/{id}/events as Server-Sent Events
(the same frame shape as Dream Forge: id, event, data with an ISO-8601 "time").

Usage: python bench/python_baseline_service.py --data-dir DIR [--port 0] [--runner PATH
       --models-dir DIR]; prints "serving http://HOST:PORT" when it accepts connections.
"""
import argparse
import datetime
import http.server
import json
import os
import pathlib
import queue
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, spec TEXT NOT NULL,
                                 progress REAL NOT NULL DEFAULT 0,
                                 created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL,
                                   type TEXT NOT NULL, data TEXT NOT NULL,
                                   created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, id);
"""

EVENTS_PATH = re.compile(r"^/v1/jobs/([0-9a-f-]+)/events$")


def now_ms():
    return int(time.time() * 1000)


def iso8601_utc(epoch_ms):
    moment = datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def validation_problems(body):
    """The field errors of a generate request, as [(field, message)]."""
    if not isinstance(body, dict):
        return [("", "must be a JSON object")]
    problems = []

    def check_int(field, low, high, multiple=1, required=False):
        value = body.get(field)
        if value is None:
            if required:
                problems.append((field, "is required"))
        elif not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append((field, f"must be an integer from {low} to {high}"))
        elif value % multiple:
            problems.append((field, f"must be a multiple of {multiple}"))

    if not isinstance(body.get("model_id"), str) or not body["model_id"]:
        problems.append(("model_id", "must be a non-empty string"))
    if not isinstance(body.get("prompt"), str):
        problems.append(("prompt", "must be a string"))
    check_int("width", 64, 2048, multiple=8)
    check_int("height", 64, 2048, multiple=8)
    check_int("steps", 1, 150)
    check_int("count", 1, 100)
    return problems


class Database:
    """One SQLite file in WAL mode; one connection per thread."""

    def __init__(self, path):
        self.path = str(path)
        self.local = threading.local()
        self.connection().executescript(SCHEMA)

    def connection(self):
        if not hasattr(self.local, "connection"):
            connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self.local.connection = connection
        return self.local.connection

    def create_job(self, spec):
        job_id, created = str(uuid.uuid4()), now_ms()
        db = self.connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO jobs (id, status, spec, created_ms) VALUES (?, 'queued', ?, ?)",
                       (job_id, json.dumps(spec), created))
            db.execute("INSERT INTO events (job_id, type, data, created_ms) "
                       "VALUES (?, 'job_queued', '{}', ?)", (job_id, created))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return job_id

    def job_exists(self, job_id):
        found = self.connection().execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,))
        return found.fetchone() is not None

    def record_event(self, job_id, event_type, data, status=None, progress=None):
        """Appends an event stamped now; optionally updates the job's status or progress in the
        same transaction."""
        db = self.connection()
        created = now_ms()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO events (job_id, type, data, created_ms) VALUES (?, ?, ?, ?)",
                       (job_id, event_type, json.dumps(data), created))
            if status is not None:
                db.execute("UPDATE jobs SET status = ? WHERE id = ?", (status, job_id))
            if progress is not None:
                db.execute("UPDATE jobs SET progress = ? WHERE id = ?", (progress, job_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def events_after(self, job_id, after_id):
        return self.connection().execute(
            "SELECT id, type, data, created_ms FROM events WHERE job_id = ? AND id > ? ORDER BY id",
            (job_id, after_id)).fetchall()


class News:
    """Wakes the event streams whenever the worker records an event."""

    def __init__(self):
        self.condition = threading.Condition()
        self.version = 0

    def publish(self):
        with self.condition:
            self.version += 1
            self.condition.notify_all()

    def wait_after(self, version, timeout):
        with self.condition:
            self.condition.wait_for(lambda: self.version != version, timeout)
            return self.version


def text_to_image_graph(spec, seed):
    """The canonical text-to-image workflow for a generate job (what Dream Forge compiles too)."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": spec["model_id"]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": spec["prompt"], "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode",
              "inputs": {"text": spec.get("negative_prompt", ""), "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": spec.get("width", 512), "height": spec.get("height", 512),
                         "batch_size": 1}},
        "3": {"class_type": "KSampler",
              "inputs": {"seed": seed, "steps": spec.get("steps", 20),
                         "cfg": spec.get("guidance", 7.0), "sampler_name": "euler",
                         "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                         "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": "baseline", "images": ["8", 0]}},
    }


class Worker(threading.Thread):
    """Runs queued jobs one at a time on one warm runner and records the runner's events."""

    def __init__(self, database, news, runner, models_dir, output_dir):
        super().__init__(daemon=True)
        self.database, self.news = database, news
        self.output_dir = pathlib.Path(output_dir)
        self.jobs = queue.Queue()
        self.runner = subprocess.Popen([runner, "--models-dir", str(models_dir)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.send({"type": "hello", "protocol": 2})
        if self.read()["type"] != "hello":
            raise SystemExit("the runner did not answer hello")

    def send(self, request):
        self.runner.stdin.write(json.dumps(request) + "\n")
        self.runner.stdin.flush()

    def read(self):
        line = self.runner.stdout.readline()
        if not line:
            raise SystemExit("the runner exited")
        return json.loads(line)

    def record(self, job_id, event_type, data, **changes):
        self.database.record_event(job_id, event_type, data, **changes)
        self.news.publish()

    def run(self):
        while True:
            job_id, spec = self.jobs.get()
            self.run_job(job_id, spec)

    def run_job(self, job_id, spec):
        self.record(job_id, "job_started", {"attempt": 1}, status="running")
        seed = spec.get("seed", int.from_bytes(os.urandom(6), "big"))
        count = spec.get("count", 1)
        self.send({"type": "run", "id": job_id, "graph": text_to_image_graph(spec, seed),
                   "items": [{"index": i, "seed": seed + i} for i in range(count)],
                   "output_dir": str(self.output_dir / job_id)})
        while True:
            event = self.read()
            kind = event["type"]
            index = event.get("item_index")
            if kind == "item_started":
                self.record(job_id, "item_started", {"item_index": index, "seed": event["seed"]})
            elif kind == "progress":
                progress = (index + event["progress"]) / count
                self.record(job_id, "progress",
                            {"item_index": index, "step": event["step"],
                             "total_steps": event["total"], "progress": progress},
                            progress=progress)
            elif kind == "stage":
                self.record(job_id, "log", {"item_index": index, "message": event["stage"]})
            elif kind == "artifact":
                self.record(job_id, "artifact", {"item_index": index, "path": event["path"],
                                                 "sha256": event["sha256"]})
            elif kind == "item_finished":
                self.record(job_id, "item_finished",
                            {"item_index": index, "duration_ms": event["duration_ms"]})
            elif kind == "error":
                self.record(job_id, "error", {"code": event["code"], "message": event["message"]})
            elif kind == "run_finished":
                status = event["status"]
                self.record(job_id, "job_finished", {"status": status}, status=status)
                return


def make_handler(database, news, worker):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes

        def log_message(self, format, *args):
            pass

        def answer(self, status, body):
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):
            if self.path != "/v1/jobs":
                self.answer(404, {"code": "not_found", "message": "no such route"})
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                self.answer(400, {"code": "invalid_json", "message": "the body is not JSON"})
                return
            problems = validation_problems(body)
            if problems:
                fields = [{"field": field, "message": message} for field, message in problems]
                self.answer(422, {"code": "invalid_argument", "message": "invalid job request",
                                  "details": {"fields": fields}})
                return
            job_id = database.create_job(body)
            if worker is not None:
                worker.jobs.put((job_id, body))
            self.answer(201, {"id": job_id, "status": "queued"})

        def do_GET(self):
            found = EVENTS_PATH.match(self.path)
            if not found or not database.job_exists(found.group(1)):
                self.answer(404, {"code": "not_found", "message": "no such job"})
                return
            self.stream_events(found.group(1))

        def stream_events(self, job_id):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"retry: 1000\n\n")
            self.wfile.flush()
            last_id, version = 0, news.version
            while True:
                for event_id, event_type, data, created_ms in database.events_after(job_id,
                                                                                    last_id):
                    frame = {"id": event_id, "job_id": job_id, "type": event_type,
                             "data": json.loads(data), "time": iso8601_utc(created_ms)}
                    text = f"id: {event_id}\nevent: {event_type}\ndata: {json.dumps(frame)}\n\n"
                    self.wfile.write(text.encode())
                    last_id = event_id
                    if event_type == "job_finished":
                        self.wfile.flush()
                        self.close_connection = True
                        return
                self.wfile.flush()
                version = news.wait_after(version, timeout=1.0)

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--runner", help="a runner executable; without it jobs stay queued")
    parser.add_argument("--models-dir", help="the runner's checkpoints folder")
    args = parser.parse_args()
    data_dir = pathlib.Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    database, news = Database(data_dir / "baseline.sqlite3"), News()
    worker = None
    if args.runner:
        worker = Worker(database, news, args.runner, args.models_dir, data_dir / "outputs")
        worker.start()
    server = Server((args.host, args.port), make_handler(database, news, worker))
    host, port = server.server_address[:2]
    print(f"serving http://{host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
