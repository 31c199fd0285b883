"""PostgreSQL restarting under load: the API answers 503 with the envelope while it is down and
recovers by itself, workers wait instead of failing jobs, and every job finishes exactly once."""
import threading
import time

import pytest

from backends import PostgresServer
from service_support import generate_body


@pytest.fixture
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


def test_a_postgres_restart_mid_load_loses_no_job(start_service, postgres):
    service = start_service("--lease", "2", "--retry-base", "0.2",
                            env={"DREAMFORGE_DATABASE_URL": postgres.create_database()})
    jobs = [service.create_job(generate_body(count=2, steps=6, seed=100 + i))["id"] for i in range(4)]
    while service.get(f"/v1/jobs/{jobs[0]}").json()["status"] != "running":
        time.sleep(0.05)

    answers = []

    def probe_while_down():
        deadline = time.time() + 6
        while time.time() < deadline:
            response = service.get("/readyz")
            answers.append((response.status_code, response.json()))
            if response.status_code == 503:
                return
            time.sleep(0.05)

    restart = threading.Thread(target=postgres.restart, args=(3,))
    restart.start()
    time.sleep(0.5)
    probe_while_down()
    restart.join()

    status, body = answers[-1]
    assert status == 503 and body["code"] == "unavailable", answers[-1]
    assert "correlation_id" in body
    deadline = time.time() + 30
    while service.get("/readyz").status_code != 200:
        assert time.time() < deadline, "the API did not recover after the database came back"
        time.sleep(0.2)

    for job_id in jobs:
        done = service.wait_for_job(job_id, timeout=180)
        assert done["status"] == "succeeded", done["error"]
        logs = service.get(f"/v1/jobs/{job_id}/logs").json()
        finished = [e for e in service.events(job_id) if e[1] == "job_finished"]
        assert len(finished) == 1, logs
        artifacts = service.get(f"/v1/jobs/{job_id}/artifacts").json()["artifacts"]
        assert sorted(a["item_index"] for a in artifacts) == [0, 1]
