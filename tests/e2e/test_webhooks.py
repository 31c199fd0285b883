"""Webhooks end to end: jobs made through /v1 and ComfyUI's /prompt post their events to a
receiver on loopback (allowlisted), signed as Standard Webhooks says (checked with the
`standardwebhooks` package receivers use), retried through a receiver that fails, delivered after
a service restart, progress at most every 500 ms; internal targets are refused by default."""
import json
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service_support import comfy_graph, generate_body

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ALLOW_LOOPBACK = {"DREAMFORGE_WEBHOOK_ALLOWED_TARGETS": "127.0.0.1",
                  "DREAMFORGE_WEBHOOK_SECRET": SECRET,
                  "DREAMFORGE_WEBHOOK_RETRY_BASE": "0.05"}


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST (headers, body, arrival time) and
    answers 503 to the first `failures` of them."""

    def __init__(self, port=0, failures=0):
        self.deliveries = []
        self.failures = failures
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    failing = receiver.failures > 0
                    receiver.failures -= 1 if failing else 0
                    receiver.deliveries.append({"headers": dict(self.headers), "body": body,
                                                "at": time.monotonic(), "answered": 503 if failing else 204})
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def accepted(self):
        with self.lock:
            return [d for d in self.deliveries if d["answered"] == 204]

    def wait_for(self, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.accepted()):
                return self.accepted()
            time.sleep(0.05)
        raise AssertionError(f"the receiver got: {[payload(d)['type'] for d in self.accepted()]}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    started = []

    def start(**kwargs):
        started.append(Receiver(**kwargs))
        return started[-1]

    yield start
    for server in started:
        server.close()


def payload(delivery):
    return json.loads(delivery["body"])


def verified(delivery, secret=SECRET):
    """The delivery's body, after checking its signature as a Standard Webhooks receiver does."""
    return Webhook(secret).verify(delivery["body"], delivery["headers"])


def types(deliveries):
    return [payload(d)["type"] for d in deliveries]


def test_job_events_arrive_signed_and_are_listed_on_the_job(start_service, receiver):
    hooks = receiver()
    service = start_service(env=ALLOW_LOOPBACK)
    job = service.create_job(generate_body(count=2, webhook=hooks.url,
                                           webhook_events=["start", "item", "completed"]))
    assert job["webhook"] == {"url": hooks.url, "events": ["start", "item", "completed"]}
    service.wait_for_job(job["id"])
    got = hooks.wait_for(lambda ds: "job.completed" in types(ds))
    assert sorted(types(got)) == ["job.completed", "job.item", "job.item", "job.start"]
    assert types(got)[-1] == "job.completed"
    for delivery in got:
        body = verified(delivery)
        assert body["data"]["job"]["id"] == job["id"]
        assert delivery["headers"]["webhook-id"].startswith("msg_")
        assert body["timestamp"].endswith("Z")
    completed = payload(got[-1])["data"]
    assert completed["job"]["status"] == "succeeded", "sent once the job's state is final"
    assert len(completed["artifacts"]) == 2
    items = [payload(d)["data"] for d in got if payload(d)["type"] == "job.item"]
    assert sorted(i["event"]["item_index"] for i in items) == [0, 1]
    assert all(len(i["artifacts"]) == 1 and i["artifacts"][0]["url"] for i in items)
    assert len({d["headers"]["webhook-id"] for d in got}) == 4

    listed = service.get(f"/v1/jobs/{job['id']}/webhooks").json()
    assert listed["webhook"]["url"] == hooks.url
    assert [(d["event"], d["status"], d["attempts"], d["last_status_code"])
            for d in listed["deliveries"]] == [("start", "delivered", 1, 204),
                                               ("item", "delivered", 1, 204),
                                               ("item", "delivered", 1, 204),
                                               ("completed", "delivered", 1, 204)]
    metrics = service.get("/metrics").text
    assert 'dreamforge_webhook_attempts_total{event="completed",outcome="delivered"} 1' in metrics
    with pytest.raises(WebhookVerificationError):
        verified(got[0], "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB")


def test_a_failing_receiver_gets_the_same_message_until_it_takes_it(start_service, receiver):
    hooks = receiver(failures=5)
    service = start_service(env=ALLOW_LOOPBACK)
    job = service.create_job(generate_body(webhook=hooks.url, webhook_events=["completed"]))
    service.wait_for_job(job["id"])
    hooks.wait_for(lambda ds: len(ds) == 1)
    attempts = hooks.deliveries
    assert [d["answered"] for d in attempts] == [503] * 5 + [204]
    assert len({d["headers"]["webhook-id"] for d in attempts}) == 1, "one message, six attempts"
    assert len({d["body"] for d in attempts}) == 1, "the same body every time"
    for delivery in attempts:
        verified(delivery)
    gaps = [b["at"] - a["at"] for a, b in zip(attempts, attempts[1:])]
    backoff = [0.05 * multiple for multiple in (1, 6, 24, 60, 180)]  # the schedule at base 0.05 s
    assert all(gap >= wait * 0.9 for gap, wait in zip(gaps, backoff)), (gaps, backoff)
    [delivery] = service.get(f"/v1/jobs/{job['id']}/webhooks").json()["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 6)
    metrics = service.get("/metrics").text
    assert 'dreamforge_webhook_attempts_total{event="completed",outcome="retrying"} 5' in metrics


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_delivery_the_service_could_not_make_is_made_after_a_restart(start_service, receiver,
                                                                       tmp_path):
    port = free_port()  # nothing listens there yet: every attempt fails to connect
    url = f"http://127.0.0.1:{port}/hooks"
    env = {**ALLOW_LOOPBACK, "DREAMFORGE_WEBHOOK_RETRY_BASE": "0.5"}
    service = start_service(env=env)
    job = service.create_job(generate_body(webhook=url, webhook_events=["completed"]))
    service.wait_for_job(job["id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        [delivery] = service.get(f"/v1/jobs/{job['id']}/webhooks").json()["deliveries"]
        if delivery["last_error"]:  # an attempt failed and was recorded (not one in flight)
            break
        time.sleep(0.05)
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None, delivery
    service.stop(signal.SIGKILL)

    hooks = receiver(port=port)
    restarted = start_service(data_dir=service.data_dir, env=env)
    got = hooks.wait_for(lambda ds: len(ds) == 1)
    body = verified(got[0])
    assert body["data"]["job"]["id"] == job["id"]
    [delivery] = restarted.get(f"/v1/jobs/{job['id']}/webhooks").json()["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] >= 2


def test_progress_is_sent_at_most_every_500_ms_and_before_completion(start_service, receiver):
    hooks = receiver()
    service = start_service(env=ALLOW_LOOPBACK)
    job = service.create_job(generate_body(count=3, steps=30, webhook=hooks.url,
                                           webhook_events=["progress", "completed"]))
    service.wait_for_job(job["id"])
    got = hooks.wait_for(lambda ds: "job.completed" in types(ds))
    progress = [d for d in got if payload(d)["type"] == "job.progress"]
    progress_events = [e for e in service.events(job["id"]) if e[1] == "progress"]
    assert len(progress_events) == 90
    assert 1 <= len(progress) < len(progress_events), "coalesced"
    gaps = [b["at"] - a["at"] for a, b in zip(progress, progress[1:])]
    assert all(gap >= 0.45 for gap in gaps), gaps  # 500 ms apart when sent, less a little jitter
    assert types(got)[-1] == "job.completed", "no progress after the job's end"
    assert all(0 <= payload(d)["data"]["job"]["progress"] <= 1 for d in progress)


def test_a_comfyui_prompt_subscribes_in_extra_data(start_service, receiver):
    hooks = receiver()
    service = start_service(env=ALLOW_LOOPBACK)
    response = service.post("/prompt", {"prompt": comfy_graph(),
                                        "extra_data": {"webhook": hooks.url,
                                                       "webhook_events": ["completed"]}})
    assert response.status_code == 200, response.text
    prompt_id = response.json()["prompt_id"]
    got = hooks.wait_for(lambda ds: len(ds) == 1)
    body = verified(got[0])
    assert body["type"] == "job.completed"
    assert body["data"]["job"]["id"] == prompt_id
    assert body["data"]["job"]["status"] == "succeeded"


def test_internal_targets_are_refused_unless_allowlisted(start_service):
    service = start_service(env={"DREAMFORGE_WEBHOOK_SECRET": SECRET})
    for url in ("http://127.0.0.1:9/in", "http://localhost/in", "http://169.254.169.254/latest",
                "http://10.1.2.3/in", "http://[::1]/in", "ftp://8.8.8.8/in"):
        refused = service.post("/v1/jobs", generate_body(webhook=url))
        assert refused.status_code == 422, (url, refused.text)
        error = refused.json()
        assert error["code"] == "validation"
        assert error["details"]["fields"][0]["field"] == "webhook", error
    comfy = service.post("/prompt", {"prompt": comfy_graph(),
                                     "extra_data": {"webhook": "http://127.0.0.1:9/in"}})
    assert comfy.status_code == 400
    assert comfy.json()["error"]["type"] == "invalid_prompt"
    assert "loopback" in comfy.json()["error"]["details"]
    bad_events = service.post("/v1/jobs", generate_body(webhook="https://8.8.8.8/in",
                                                        webhook_events=["finished"]))
    assert bad_events.status_code == 422
    assert bad_events.json()["details"]["fields"][0]["field"].startswith("webhook_events")
    assert service.get("/v1/jobs").json()["jobs"] == [], "nothing was created"


def test_without_a_secret_a_webhook_is_refused_and_a_keys_own_secret_signs(start_service, receiver,
                                                                          tmp_path, keys_cli):
    hooks = receiver()
    data_dir = tmp_path / "data"
    env = {"DREAMFORGE_WEBHOOK_ALLOWED_TARGETS": "127.0.0.1"}
    service = start_service(data_dir=data_dir, env=env)
    refused = service.post("/v1/jobs", generate_body(webhook=hooks.url))
    assert refused.status_code == 422
    assert "DREAMFORGE_WEBHOOK_SECRET" in refused.json()["message"]

    made = json.loads(keys_cli(data_dir, "create", "--name", "app", "--json").stdout)
    assert made["webhook_secret"].startswith("whsec_")
    shown = keys_cli(data_dir, "webhook-secret", made["id"]).stdout.strip()
    assert shown == made["webhook_secret"]
    job = service.create_job(generate_body(webhook=hooks.url, webhook_events=["completed"]),
                             headers={"Authorization": f"Bearer {made['key']}"})
    got = hooks.wait_for(lambda ds: len(ds) == 1)
    assert verified(got[0], made["webhook_secret"])["data"]["job"]["id"] == job["id"]
    with pytest.raises(WebhookVerificationError):
        verified(got[0], SECRET)
    assert made["key"] not in got[0]["body"].decode() and made["key"] not in str(got[0]["headers"])

