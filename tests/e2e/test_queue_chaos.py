"""Chaos on a scaled-out service (an API process and worker processes on PostgreSQL and Redis
Streams): workers killed mid-job, the API killed mid-burst, Redis and PostgreSQL restarted under
load, the S3 storage down for longer than a job's retries would last, a poison job. Every job the service acknowledged finishes exactly once, with its artifacts
stored once."""
import signal
import subprocess
import threading
import time

import pytest
import requests

from backends import PostgresServer, RedisServer
from e2e_support import wait_until
from s3_server import S3Server
from service_support import FIXTURES, comfy_graph, generate_body, install_tiny_model

ROUNDS = 3  # each chaos scenario is repeated: one lucky pass proves little


class Cluster:
    """PostgreSQL, Redis, and dreamforge api/worker processes sharing one data directory."""

    def __init__(self, start_service, data_dir):
        self.start_service = start_service
        self.data_dir = data_dir
        self.postgres = PostgresServer().start()
        self.redis = RedisServer().start()
        self.env = {"DREAMFORGE_DATABASE_URL": self.postgres.create_database(),
                    "DREAMFORGE_QUEUE_URL": self.redis.url(reconcile_ms=1000)}
        install_tiny_model(data_dir)

    def api(self):
        return self.start_service(data_dir=self.data_dir, command="api", env=self.env)

    def worker(self, *flags, env=None):
        return self.start_service("--lease", "2", "--retry-base", "0.2", *flags,
                                  data_dir=self.data_dir, command="worker",
                                  env={**self.env, **(env or {})})

    def stop(self):
        self.redis.stop()
        self.postgres.stop()


@pytest.fixture
def cluster(start_service, tmp_path):
    cluster = Cluster(start_service, tmp_path / "data")
    yield cluster
    cluster.stop()


def taken(api, job_id):
    """Whether a worker has taken the job (it may have finished it already on a fast machine)."""
    return api.get(f"/v1/jobs/{job_id}").json()["status"] != "queued"


def running_worker_pid(api, job_id):
    """The pid of the worker process that runs the job (worker ids are host:pid:index)."""
    job = api.get(f"/v1/jobs/{job_id}").json()
    if job["status"] != "running" or not job["steps"]:
        return None
    return int(job["steps"][-1]["worker_id"].split(":")[1])


def assert_finished_once(api, job_id, items):
    done = api.wait_for_job(job_id, timeout=180)
    assert done["status"] == "succeeded", done
    finished = [e for e in api.events(job_id) if e[1] == "job_finished"]
    assert len(finished) == 1, finished
    artifacts = api.get(f"/v1/jobs/{job_id}/artifacts").json()["artifacts"]
    assert sorted(a["item_index"] for a in artifacts) == list(range(items)), artifacts
    return done


def test_kill_9_a_worker_mid_job_the_other_worker_completes_it_once(cluster):
    api = cluster.api()
    workers = [cluster.worker(), cluster.worker()]
    for round_number in range(ROUNDS):
        job = api.create_job(generate_body(count=2, steps=12, seed=round_number))
        # Killed as soon as its sampler runs, told by the event stream rather than found by polling:
        # on a fast machine the whole job takes little more than a polling interval.
        for _, kind, _ in api.iter_events(job["id"]):
            if kind == "progress":
                break
        victim_pid = running_worker_pid(api, job["id"])
        assert victim_pid is not None, api.get(f"/v1/jobs/{job['id']}").json()
        victim = next(w for w in workers if w.process.pid == victim_pid)
        victim.process.kill()
        victim.process.wait()

        done = assert_finished_once(api, job["id"], items=2)
        assert done["attempts"] == 2, done
        survivors = {int(step["worker_id"].split(":")[1]) for step in done["steps"][1:]}
        assert victim_pid not in survivors
        workers = [w for w in workers if w is not victim] + [cluster.worker()]


def test_a_job_saved_while_redis_is_down_is_dispatched_when_it_returns(cluster):
    api = cluster.api()
    cluster.worker()
    for round_number in range(ROUNDS):
        cluster.redis.kill()
        # The database write succeeds and the enqueue cannot: the crash window, held open.
        job = api.create_job(generate_body(seed=round_number))
        assert job["status"] == "queued"
        ready = api.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["details"]["checks"]["queue"]["ok"] is False
        cluster.redis.start()  # empty: the job is only in the database
        assert_finished_once(api, job["id"], items=1)
        assert api.get("/readyz").status_code == 200


def test_kill_9_the_api_mid_burst_every_saved_job_still_runs(cluster):
    cluster.worker()
    acknowledged = []
    for round_number in range(ROUNDS):
        api = cluster.api()
        stop = threading.Event()

        def post_jobs(client):
            session = requests.Session()
            while not stop.is_set():
                try:
                    response = session.post(api.url("/v1/jobs"), json=generate_body(steps=1, seed=client),
                                            timeout=10)
                except requests.RequestException:
                    return  # the API is gone
                if response.status_code == 202:
                    acknowledged.append(response.json()["id"])

        clients = [threading.Thread(target=post_jobs, args=(n,)) for n in range(4)]
        for client in clients:
            client.start()
        time.sleep(0.5 + 0.3 * round_number)
        api.process.send_signal(signal.SIGKILL)
        api.process.wait()
        stop.set()
        for client in clients:
            client.join()

    api = cluster.api()
    saved = []
    cursor = ""
    while True:
        page = api.get(f"/v1/jobs?limit=100&cursor={cursor}").json()
        saved += [job["id"] for job in page["jobs"]]
        cursor = page.get("next_cursor") or ""
        if not cursor:
            break
    assert acknowledged and set(acknowledged) <= set(saved)
    for job_id in saved:
        assert_finished_once(api, job_id, items=1)


def test_redis_then_postgres_restart_mid_load_loses_no_job(cluster):
    api = cluster.api()
    cluster.worker()
    cluster.worker()
    for round_number in range(ROUNDS):
        jobs = [api.create_job(generate_body(steps=4, seed=100 * round_number + i))["id"]
                for i in range(6)]
        wait_until(lambda: taken(api, jobs[0]), "a worker takes the first job", 120)
        cluster.redis.restart(down_seconds=1)
        time.sleep(0.5)
        cluster.postgres.restart(down_seconds=1)
        wait_until(lambda: api.get("/readyz").status_code == 200, "the API is ready again", 60)
        for job_id in jobs:
            assert_finished_once(api, job_id, items=1)


def test_a_poison_job_lands_in_the_dead_letter_state_with_its_history(cluster):
    api = cluster.api()
    pid_dir = cluster.data_dir.parent / "runner-pids"
    pid_dir.mkdir()
    cluster.worker("--runner", FIXTURES / "misbehaving_runner.py",
                   env={"MISBEHAVE": "abort", "RUNNER_PID_DIR": str(pid_dir)})
    prefix = cluster.env["DREAMFORGE_QUEUE_URL"].split("prefix=")[1].split("&")[0]
    for round_number in range(ROUNDS):
        job = api.create_job(generate_body(seed=round_number))
        done = api.wait_for_job(job["id"], timeout=120)
        assert done["status"] == "failed" and done["error"]["code"] == "runner_crashed"
        assert done["attempts"] == 3 and len(done["steps"]) == 3
        events = [e[1] for e in api.events(job["id"])]
        assert events.count("job_started") == 3 and events.count("retry_scheduled") == 2
        failed = api.get("/v1/jobs?status=failed").json()["jobs"]
        assert job["id"] in [j["id"] for j in failed]
        dead = cluster.redis.command("XRANGE", f"{prefix}:dead", "-", "+")
        assert dead.count(job["id"]) == 1, dead


def test_an_s3_outage_mid_load_holds_jobs_until_it_returns(cluster, tmp_path):
    s3 = S3Server(tmp_path / "s3").start()
    try:
        s3.create_bucket("chaos")
        cluster.env.update(s3.storage_env("chaos"))
        api = cluster.api()
        cluster.worker()
        for round_number in range(ROUNDS):
            jobs = [api.create_job(generate_body(steps=4, seed=100 * round_number + i))["id"]
                    for i in range(4)]
            wait_until(lambda: taken(api, jobs[0]), "a worker takes the first job", 120)
            s3.stop()
            wait_until(lambda: api.get("/readyz").status_code == 503, "readiness reports it", 30)
            storage = api.get("/readyz").json()["details"]["checks"]["storage"]
            assert storage["ok"] is False and "S3" in storage["error"], storage
            time.sleep(3)  # longer than the job retries would last (--retry-base 0.2, 3 attempts)
            s3.start()
            wait_until(lambda: api.get("/readyz").status_code == 200, "the API is ready again", 60)
            for job_id in jobs:
                assert_finished_once(api, job_id, items=1)
                keys = s3.list_keys("chaos", f"dreamforge/default/jobs/{job_id}/")
                assert len(keys) == 1, keys
    finally:
        s3.stop()


def test_an_api_machine_without_models_takes_jobs_and_serves_their_images(cluster, tmp_path):
    s3 = S3Server(tmp_path / "s3").start()
    try:
        s3.create_bucket("machines")
        cluster.env.update(s3.storage_env("machines"))
        cluster.worker()  # its data dir holds the tiny model and registers it
        # As registered by a worker on another machine: its files lie at a path this machine lacks.
        subprocess.run([str(cluster.postgres.bin / "psql"), "-q", "-d",
                        cluster.env["DREAMFORGE_DATABASE_URL"], "-c",
                        "UPDATE models SET record = replace(record, "
                        f"'{cluster.data_dir}', '/srv/worker-machine/dreamforge')"],
                       check=True, capture_output=True)
        api = cluster.start_service(data_dir=tmp_path / "api-machine", command="api",
                                    env=cluster.env, model=False)
        assert [m["id"] for m in api.get("/v1/models").json()["models"]] == ["tiny"]
        job = api.create_job(generate_body(count=2))
        assert_finished_once(api, job["id"], items=2)
        for artifact in api.get(f"/v1/jobs/{job['id']}/artifacts").json()["artifacts"]:
            assert api.get(artifact["url"]).content.startswith(b"\x89PNG")

        # A ComfyUI client: the image lies in the worker machine's output folder, so /view on the
        # API machine redirects to the stored artifact.
        prompt = api.post("/prompt", {"prompt": comfy_graph(seed=11), "client_id": "far"}).json()
        api.wait_for_job(prompt["prompt_id"])
        history = api.get(f"/history/{prompt['prompt_id']}").json()[prompt["prompt_id"]]
        image = history["outputs"]["9"]["images"][0]
        view = api.get("/view", params={"filename": image["filename"], "type": "output",
                                        "subfolder": image["subfolder"]}, allow_redirects=False)
        assert view.status_code == 302 and view.headers["Location"].startswith(s3.endpoint)
        assert api.get(view.headers["Location"]).content.startswith(b"\x89PNG")
        assert api.get("/view", params={"filename": "never_made.png"}).status_code == 404
    finally:
        s3.stop()
