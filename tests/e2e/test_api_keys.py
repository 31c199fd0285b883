"""API keys and users, end to end on the real binaries: `dreamforge keys` makes, lists and
revokes keys; once one exists every route family needs one (/v1 by header, the ComfyUI routes and
/ws also by ?token=), users see only their own jobs, artifacts, history and socket messages,
admins see all, and a service without keys refuses a public address."""
import json
import os
import socket
import subprocess
import time

import pytest
import requests
import websocket

from e2e_support import BIN, run_dreamforge
from service_support import Service, comfy_graph, generate_body, install_tiny_model


def create_key(data_dir, name, scope="user", user=None, keys_cli=None, limits=()):
    """A new key (its JSON record with "key") in the database of `data_dir`'s service."""
    args = ["create", "--name", name, "--scope", scope, "--json", *limits]
    if user:
        args += ["--user", user]
    if keys_cli is None:
        made = json.loads(run_dreamforge("keys", *args, "--data-dir", data_dir).stdout)
    else:
        made = json.loads(keys_cli(data_dir, *args).stdout)
    assert made["key"].startswith("dfk_" + made["id"] + "_")
    return made


def bearer(key):
    return {"Authorization": f"Bearer {key['key']}"}


@pytest.fixture
def keyed_service(start_service, tmp_path, keys_cli):
    """A service with an admin key and two user keys (alice, bob), made before it started."""
    data_dir = tmp_path / "data"
    install_tiny_model(data_dir)
    keys = {"admin": create_key(data_dir, "root", "admin", keys_cli=keys_cli),
            "alice": create_key(data_dir, "alice", keys_cli=keys_cli),
            "bob": create_key(data_dir, "bob", keys_cli=keys_cli)}
    service = start_service(data_dir=data_dir)
    return service, keys


def test_keys_are_printed_once_listed_without_their_secret_and_revoked(tmp_path):
    data_dir = tmp_path / "data"
    plain = run_dreamforge("keys", "create", "--data-dir", data_dir, "--name", "ci-bot")
    key = plain.stdout.strip()
    assert key.startswith("dfk_") and "shown only now" in plain.stderr
    made = create_key(data_dir, "ops", "admin", user="operations")
    assert (made["user"], made["scope"]) == ("operations", "admin")

    listed = json.loads(run_dreamforge("keys", "list", "--data-dir", data_dir, "--json").stdout)
    assert [k["name"] for k in listed] == ["ci-bot", "ops"]
    assert all(k["revoked_at"] is None for k in listed)
    table = run_dreamforge("keys", "list", "--data-dir", data_dir).stdout
    assert key not in table and made["key"] not in table
    assert key[4:20] in table  # the id part is shown
    assert made["key"] not in (data_dir / "dreamforge.sqlite3").read_bytes().decode("latin-1")

    run_dreamforge("keys", "revoke", "--data-dir", data_dir, made["id"])
    listed = json.loads(run_dreamforge("keys", "list", "--data-dir", data_dir, "--json").stdout)
    assert listed[1]["revoked_at"].endswith("Z")
    missing = run_dreamforge("keys", "revoke", "--data-dir", data_dir, "nope", check=False)
    assert missing.returncode == 1 and "no API key with id 'nope'" in missing.stderr
    bad = run_dreamforge("keys", "create", "--data-dir", data_dir, "--name", "x", "--scope", "root",
                         check=False)
    assert bad.returncode == 1 and "scope must be" in bad.stderr


def test_every_route_family_needs_a_key_once_one_exists(start_service, tmp_path, keys_cli):
    data_dir = tmp_path / "data"
    service = start_service(data_dir=data_dir)
    assert service.get("/v1/jobs").status_code == 200  # no keys yet: open on loopback
    admin = create_key(data_dir, "root", "admin", keys_cli=keys_cli)  # made while it runs
    user = create_key(data_dir, "alice", keys_cli=keys_cli)

    refused = service.get("/v1/jobs")
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert service.get("/v1/jobs", headers={"Authorization": "Bearer dfk_0_wrong"}).status_code == 401
    assert service.get("/v1/jobs", headers=bearer(user)).status_code == 200
    # /v1 takes the header only; the ComfyUI routes also take ?token=.
    assert service.get("/v1/jobs", params={"token": user["key"]}).status_code == 401
    for path in ("/history", "/api/queue", "/object_info/KSampler", "/system_stats", "/api/jobs",
                 "/prompt", "/settings", "/userdata?dir=workflows"):
        assert service.get(path).status_code == 401, path
        assert service.get(path, params={"token": user["key"]}).status_code == 200, path
        assert service.get(path, headers=bearer(user)).status_code == 200, path
    assert service.post("/prompt", {"prompt": comfy_graph()}).status_code == 401

    ws_url = service.base_url.replace("http://", "ws://") + "/ws?clientId=c1"
    with pytest.raises(websocket.WebSocketBadStatusException) as handshake:
        websocket.create_connection(ws_url, timeout=10)
    assert handshake.value.status_code == 401
    socket_in = websocket.create_connection(ws_url + "&token=" + user["key"], timeout=10)
    assert json.loads(socket_in.recv())["type"] == "status"
    socket_in.close()

    # Health, readiness, the API document and the frontend's files stay open.
    for path in ("/healthz", "/readyz", "/v1/openapi.json"):
        assert service.get(path).status_code == 200, path
    # Admin-only routes.
    assert service.get("/metrics", headers=bearer(user)).status_code == 403
    assert service.get("/metrics", headers=bearer(admin)).status_code == 200
    assert service.post("/free", {"free_memory": True}, headers=bearer(user)).status_code == 403

    # A revoked key stops working at once; revoking every key does not open the service.
    keys_cli(data_dir, "revoke", user["id"])
    keys_cli(data_dir, "revoke", admin["id"])
    assert service.get("/v1/jobs", headers=bearer(user)).status_code == 401
    assert service.get("/v1/jobs").status_code == 401

    # No key ever reaches the service's output or its metrics.
    output = "".join(service.output)
    assert user["key"] not in output and admin["key"] not in output


def test_users_see_only_their_own_jobs_artifacts_and_history(keyed_service, tmp_path):
    service, keys = keyed_service
    alice, bob, admin = bearer(keys["alice"]), bearer(keys["bob"]), bearer(keys["admin"])

    job = service.create_job(generate_body(), headers=alice)
    assert job["status"] == "queued"
    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/artifacts",
                 f"/v1/jobs/{job['id']}/events"):
        assert service.get(path, headers=bob).status_code == 404, path
    assert service.post(f"/v1/jobs/{job['id']}/cancel", headers=bob).status_code == 404
    deadline = time.monotonic() + 120
    while service.get(f"/v1/jobs/{job['id']}", headers=alice).json()["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    artifacts = service.get(f"/v1/jobs/{job['id']}/artifacts", headers=alice).json()["artifacts"]
    assert artifacts and all(a["key"].startswith("dreamforge/alice/jobs/") for a in artifacts)
    assert service.get(artifacts[0]["url"]).status_code == 200  # the signed URL is the credential

    assert [j["id"] for j in service.get("/v1/jobs", headers=alice).json()["jobs"]] == [job["id"]]
    assert service.get("/v1/jobs", headers=bob).json()["jobs"] == []
    assert [j["id"] for j in service.get("/v1/jobs", headers=admin).json()["jobs"]] == [job["id"]]
    # Where a model's files lie on the server is for admins.
    assert "local_path" not in service.get("/v1/models/tiny", headers=alice).json()
    assert "local_path" in service.get("/v1/models/tiny", headers=admin).json()
    assert service.get(f"/v1/jobs/{job['id']}", headers=admin).status_code == 200

    # The same Idempotency-Key from two users makes two jobs.
    same = {"Idempotency-Key": "nightly-1"}
    first = service.create_job(generate_body(seed=7), headers={**alice, **same})
    second = service.create_job(generate_body(seed=7), headers={**bob, **same})
    assert first["id"] != second["id"]
    again = service.post("/v1/jobs", generate_body(seed=7), headers={**alice, **same})
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    for created, who in ((first, alice), (second, bob)):
        service.http.headers.update(who)
        service.wait_for_job(created["id"])
    service.http.headers.pop("Authorization")

    # ComfyUI: a prompt's history, queue entries and outputs are its user's.
    queued = service.post("/prompt", {"prompt": comfy_graph(prefix="alice")}, headers=alice).json()
    prompt_id = queued["prompt_id"]
    deadline = time.monotonic() + 120
    while prompt_id not in service.get("/history", headers=alice).json():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert prompt_id not in service.get("/history", headers=bob).json()
    assert service.get(f"/history/{prompt_id}", headers=bob).json() == {}
    assert prompt_id in service.get("/history", headers=admin).json()
    assert prompt_id not in [j["id"] for j in service.get("/api/jobs", headers=bob).json()["jobs"]]
    assert service.get(f"/api/jobs/{prompt_id}", headers=bob).status_code == 404
    image = service.get(f"/history/{prompt_id}", headers=alice).json()[prompt_id]["outputs"]["9"]["images"][0]
    view = {k: image[k] for k in ("filename", "subfolder", "type")}
    assert service.get("/view", params=view, headers=alice).status_code == 200
    assert service.get("/view", params=view, headers=bob).status_code == 404
    assert service.get("/view", params=view, headers=admin).status_code == 200
    # Bob's "clear" clears his own history only.
    assert service.post("/history", {"clear": True}, headers=bob).status_code == 200
    assert prompt_id in service.get("/history", headers=alice).json()


def test_socket_messages_go_only_to_their_users_client(keyed_service):
    service, keys = keyed_service
    base = service.base_url.replace("http://", "ws://") + "/ws?clientId=shared&token="
    alice_socket = websocket.create_connection(base + keys["alice"]["key"], timeout=60)
    bob_socket = websocket.create_connection(base + keys["bob"]["key"], timeout=60)
    # Both know themselves as "shared".
    assert json.loads(alice_socket.recv())["data"]["sid"] == "shared"
    assert json.loads(bob_socket.recv())["data"]["sid"] == "shared"
    queued = service.post("/prompt", {"prompt": comfy_graph(prefix="ws"), "client_id": "shared"},
                          headers=bearer(keys["alice"])).json()
    prompt_id = queued["prompt_id"]

    def prompt_messages(ws, until_done):
        seen = []
        ws.settimeout(60 if until_done else 2)
        try:
            while True:
                frame = ws.recv()
                if not isinstance(frame, str):
                    continue
                message = json.loads(frame)
                if message.get("data", {}).get("prompt_id") == prompt_id:
                    seen.append(message["type"])
                    if until_done and message["type"] == "executing" and message["data"]["node"] is None:
                        return seen
        except websocket.WebSocketTimeoutException:
            return seen

    alice_saw = prompt_messages(alice_socket, until_done=True)
    assert "execution_start" in alice_saw and "executed" in alice_saw
    assert prompt_messages(bob_socket, until_done=False) == []
    alice_socket.close()
    bob_socket.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_public_address_without_keys_is_refused_unless_allowed(tmp_path):
    data_dir = tmp_path / "data"
    refused = subprocess.run([str(BIN / "dreamforge"), "api", "--data-dir", str(data_dir),
                              "--host", "0.0.0.0", "--port", str(free_port())],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "refusing to listen on 0.0.0.0 without API keys" in refused.stderr
    assert "--allow-unauthenticated" in refused.stderr

    allowed = Service(data_dir, "--host", "0.0.0.0", "--allow-unauthenticated", command="api").start()
    try:
        assert any("whoever reaches it is admin" in line for line in allowed.output)
        assert allowed.get("/v1/jobs").status_code == 200
    finally:
        allowed.stop()

    key = create_key(data_dir, "root", "admin")
    keyed = Service(data_dir, "--host", "0.0.0.0", command="api").start()
    try:
        assert any("API keys: required" in line for line in keyed.output)
        assert keyed.get("/v1/jobs").status_code == 401
        assert keyed.get("/v1/jobs", headers=bearer(key)).status_code == 200
    finally:
        keyed.stop()


def test_the_frontend_signs_in_with_a_key_for_an_http_only_session_cookie(keyed_service, keys_cli):
    service, keys = keyed_service
    page = service.get("/", allow_redirects=False)
    assert page.status_code == 303 and page.headers["Location"] == "/login"
    form = service.get("/login")
    assert form.status_code == 200 and 'action="/login"' in form.text

    wrong = service.post("/login", data={"key": "dfk_0_wrong"}, allow_redirects=False)
    assert wrong.status_code == 401 and "not valid" in wrong.text
    assert "Set-Cookie" not in wrong.headers
    # A cross-site form cannot sign a browser in (login CSRF): the Origin is refused.
    forged = service.post("/login", data={"key": keys["bob"]["key"]}, allow_redirects=False,
                          headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403

    browser = requests.Session()
    signed_in = browser.post(service.url("/login"), data={"key": keys["alice"]["key"]},
                             allow_redirects=False, timeout=30)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/"
    cookie = signed_in.headers["Set-Cookie"]
    assert cookie.startswith("dreamforge_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert keys["alice"]["key"] not in cookie
    assert browser.get(service.url("/"), allow_redirects=False, timeout=30).status_code == 200
    assert browser.get(service.url("/api/queue"), timeout=30).status_code == 200
    assert browser.get(service.url("/v1/jobs"), timeout=30).status_code == 401  # /v1: keys only
    session = browser.cookies.get("dreamforge_session")
    ws = websocket.create_connection(service.base_url.replace("http://", "ws://") + "/ws",
                                     cookie=f"dreamforge_session={session}", timeout=30)
    assert json.loads(ws.recv())["type"] == "status"
    ws.close()
    # A tampered cookie is no session.
    forged_cookie = {"Cookie": "dreamforge_session=" + session[:-1] + ("0" if session[-1] != "0" else "1")}
    assert service.get("/api/queue", headers=forged_cookie).status_code == 401

    signed_out = browser.post(service.url("/logout"), allow_redirects=False, timeout=30)
    assert signed_out.status_code == 303 and "Max-Age=0" in signed_out.headers["Set-Cookie"]
    assert browser.get(service.url("/api/queue"), timeout=30).status_code == 401

    # Revoking the key ends its sessions.
    again = requests.Session()
    again.post(service.url("/login"), data={"key": keys["bob"]["key"]}, timeout=30)
    assert again.get(service.url("/api/queue"), timeout=30).status_code == 200
    keys_cli(service.data_dir, "revoke", keys["bob"]["id"])
    assert again.get(service.url("/api/queue"), timeout=30).status_code == 401


def test_a_keys_limits_answer_429_with_retry_after(start_service, tmp_path, keys_cli):
    data_dir = tmp_path / "data"
    install_tiny_model(data_dir)
    made = create_key(data_dir, "burst", keys_cli=keys_cli, limits=("--jobs-per-minute", "2"))
    assert made["jobs_per_minute"] == 2
    single = create_key(data_dir, "single", keys_cli=keys_cli,
                        limits=("--max-concurrent-jobs", "1"))
    admin = create_key(data_dir, "root", "admin", keys_cli=keys_cli)
    # The API alone: jobs stay queued, so the concurrency limit holds still.
    service = start_service(data_dir=data_dir, command="api")

    for seed in (1, 2):
        service.create_job(generate_body(seed=seed), headers=bearer(made))
    refused = service.post("/v1/jobs", generate_body(seed=3), headers=bearer(made))
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["details"]["limit"] == "jobs_per_minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # The ComfyUI side counts the same jobs.
    prompt = service.post("/prompt", {"prompt": comfy_graph()}, headers=bearer(made))
    assert prompt.status_code == 429 and prompt.json()["code"] == "rate_limited"

    first = service.create_job(generate_body(seed=4), headers={**bearer(single), "Idempotency-Key": "k1"})
    busy = service.post("/v1/jobs", generate_body(seed=5), headers=bearer(single))
    assert busy.status_code == 429 and busy.json()["details"]["limit"] == "concurrent_jobs"
    assert int(busy.headers["Retry-After"]) >= 1
    # A retried request (its Idempotency-Key) gets its job back, whatever the limit says now.
    replay = service.post("/v1/jobs", generate_body(seed=4), headers={**bearer(single), "Idempotency-Key": "k1"})
    assert replay.status_code == 200 and replay.json()["job"]["id"] == first["id"]
    # Canceling the waiting job frees the slot.
    waiting = service.get("/v1/jobs", headers=bearer(single)).json()["jobs"][0]
    service.post(f"/v1/jobs/{waiting['id']}/cancel", headers=bearer(single))
    assert service.post("/v1/jobs", generate_body(seed=6), headers=bearer(single)).status_code == 202

    metrics = service.get("/metrics", headers=bearer(admin)).text
    assert 'dreamforge_job_admissions_total{outcome="jobs_per_minute"} 2' in metrics
    assert 'dreamforge_job_admissions_total{outcome="concurrent_jobs"} 1' in metrics
    for key in (made, single, admin):
        assert key["key"] not in metrics and key["id"] not in metrics


def test_admin_actions_are_in_the_audit_log_without_secrets(tmp_path):
    data_dir = tmp_path / "data"
    install_tiny_model(data_dir)
    made = create_key(data_dir, "ops", "admin")
    run_dreamforge("keys", "revoke", "--data-dir", data_dir, made["id"])
    for action in ("disable", "enable", "remove"):
        run_dreamforge("model", action, "--data-dir", data_dir, "tiny")

    entries = json.loads(run_dreamforge("audit", "--data-dir", data_dir, "--json").stdout)
    assert [(e["action"], e["target"]) for e in entries] == [
        ("model.remove", "tiny"), ("model.enable", "tiny"), ("model.disable", "tiny"),
        ("key.revoke", made["id"]), ("key.create", made["id"])]
    assert all(e["actor"].startswith("cli:") and e["at"].endswith("Z") for e in entries)
    assert entries[-1]["details"]["scope"] == "admin"
    text = run_dreamforge("audit", "--data-dir", data_dir).stdout
    assert made["key"] not in text and made["key"] not in json.dumps(entries)
    assert len(json.loads(run_dreamforge("audit", "--data-dir", data_dir, "--limit", "2",
                                         "--json").stdout)) == 2


def test_dreamforges_own_clients_send_their_api_key(keyed_service, tmp_path):
    service, keys = keyed_service
    refused = run_dreamforge("jobs", "list", "--server", service.base_url, check=False)
    assert refused.returncode == 1 and "API key" in refused.stderr
    listed = run_dreamforge("jobs", "list", "--server", service.base_url, "--api-key",
                            keys["alice"]["key"])
    assert listed.returncode == 0
    out_dir = tmp_path / "out"
    made = run_dreamforge("generate", "a kite", "--server", service.base_url, "--model", "tiny",
                          "--width", "64", "--height", "64", "--steps", "2",
                          "--out", out_dir, env={**os.environ, "DREAMFORGE_API_KEY": keys["bob"]["key"]})
    assert made.returncode == 0, made.stderr
    assert list(out_dir.glob("*.png"))
    bobs = service.get("/v1/jobs", headers=bearer(keys["bob"])).json()["jobs"]
    assert len(bobs) == 1 and bobs[0]["status"] == "succeeded"
