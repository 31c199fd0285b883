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
    # Under load: the first job has been taken (a fast machine may even have finished it).
    deadline = time.monotonic() + 120
    while service.get(f"/v1/jobs/{jobs[0]}").json()["status"] == "queued":
        assert time.monotonic() < deadline, "no worker took the first job"
        time.sleep(0.05)

    answers = []

    def probe_while_down(restart):
        # Asks until the API answers 503, for as long as the server may still be down: the restart
        # keeps it down 3 s once stopping it is done, however long that took.
        while restart.is_alive():
            response = service.get("/readyz")
            answers.append((response.status_code, response.json()))
            if response.status_code == 503:
                return
            time.sleep(0.05)

    restart = threading.Thread(target=postgres.restart, args=(3,))
    restart.start()
    probe_while_down(restart)
    restart.join()

    assert answers, "the restart ended before the API was asked"
    status, body = answers[-1]
    assert status == 503 and body["code"] == "unavailable", answers[-1]
    assert "correlation_id" in body
    deadline = time.monotonic() + 60
    while service.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover after the database came back"
        time.sleep(0.2)

    for job_id in jobs:
        done = service.wait_for_job(job_id, timeout=180)
        assert done["status"] == "succeeded", done["error"]
        logs = service.get(f"/v1/jobs/{job_id}/logs").text
        finished = [e for e in service.events(job_id) if e[1] == "job_finished"]
        assert len(finished) == 1, logs
        artifacts = service.get(f"/v1/jobs/{job_id}/artifacts").json()["artifacts"]
        assert sorted(a["item_index"] for a in artifacts) == [0, 1]
