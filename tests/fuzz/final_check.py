"""After fuzzing: the service must still be healthy and still do its job. Cancels what the fuzzers
left queued or running (some of it may be large), then GET /healthz must answer 200 and a normal
POST /v1/jobs must be accepted and its job must succeed (with the admin key of the state file, once
the fuzzing made keys).

Usage: final_check.py BASE_URL STATE_JSON [JOB_TIMEOUT_S]"""
import sys
import time

import requests

from fuzz_common import load_state

TIMEOUT = 20


def fail(message):
    print(f"final check: FAILED: {message}", flush=True)
    sys.exit(1)


def request(http, method, url, **kwargs):
    try:
        return http.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as error:
        fail(f"{method} {url}: no answer ({type(error).__name__}: {error})")


def main():
    base = sys.argv[1].rstrip("/")
    state = load_state(sys.argv[2])
    job_timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 240
    http = requests.Session()
    if "keys" in state:
        http.headers["Authorization"] = f"Bearer {state['keys']['admin']}"
    health = request(http, "GET", f"{base}/healthz")
    if health.status_code != 200:
        fail(f"GET /healthz answered {health.status_code}: {health.text[:300]}")

    canceled = 0
    for status in ("queued", "running"):
        cursor = None
        for _ in range(50):
            params = {"status": status, "limit": 200, **({"cursor": cursor} if cursor else {})}
            page = request(http, "GET", f"{base}/v1/jobs", params=params)
            if page.status_code != 200:
                fail(f"GET /v1/jobs?status={status} answered {page.status_code}: {page.text[:300]}")
            for job in page.json()["jobs"]:
                answer = request(http, "POST", f"{base}/v1/jobs/{job['id']}/cancel")
                if answer.status_code >= 500:
                    fail(f"POST /v1/jobs/{job['id']}/cancel answered {answer.status_code}: {answer.text[:300]}")
                canceled += 1
            cursor = page.json().get("next_cursor")
            if not cursor:
                break

    body = {"model_id": state["model_ids"][0], "prompt": "a lighthouse after the storm", "width": 64,
            "height": 64, "steps": 2, "seed": 7, "priority": 100}
    created = request(http, "POST", f"{base}/v1/jobs", json=body)
    if created.status_code not in (200, 202):
        fail(f"POST /v1/jobs answered {created.status_code}: {created.text[:300]}")
    job_id = created.json()["id"]
    deadline = time.time() + job_timeout
    job = created.json()
    while time.time() < deadline:
        answer = request(http, "GET", f"{base}/v1/jobs/{job_id}")
        if answer.status_code != 200:
            fail(f"GET /v1/jobs/{job_id} answered {answer.status_code}: {answer.text[:300]}")
        job = answer.json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            break
        time.sleep(0.3)
    if job["status"] != "succeeded":
        fail(f"the job {job_id} ended {job['status']!r} (error: {job.get('error')}) after fuzzing")
    artifacts = request(http, "GET", f"{base}/v1/jobs/{job_id}/artifacts")
    if artifacts.status_code != 200 or not artifacts.json().get("artifacts"):
        fail(f"GET /v1/jobs/{job_id}/artifacts answered {artifacts.status_code}: {artifacts.text[:300]}")
    url = artifacts.json()["artifacts"][0]["url"]
    image = request(http, "GET", base + url if url.startswith("/") else url)
    if image.status_code != 200 or not image.content:
        fail(f"the job's image answered {image.status_code}")
    health = request(http, "GET", f"{base}/healthz")
    if health.status_code != 200:
        fail(f"GET /healthz answered {health.status_code} at the end")
    print(f"final check: ok (canceled {canceled} leftover jobs; job {job_id} succeeded; /healthz 200)", flush=True)
    report_internal_job_errors(http, base)


def report_internal_job_errors(http, base, shown=10):
    """Notes (not failures): accepted jobs that then failed with an internal error, i.e. requests
    the service took but should have refused when they were made."""
    errors = {}
    cursor = None
    for _ in range(20):
        params = {"status": "failed", "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = request(http, "GET", f"{base}/v1/jobs", params=params)
        if page.status_code != 200:
            return
        for job in page.json()["jobs"]:
            error = job.get("error") or {}
            if isinstance(error, dict) and error.get("code") == "internal":
                errors.setdefault(str(error.get("message", ""))[:200], job["id"])
        cursor = page.json().get("next_cursor")
        if not cursor:
            break
    if errors:
        print(f"final check: note: {len(errors)} kinds of accepted jobs failed with an internal error:", flush=True)
        for message, job_id in list(errors.items())[:shown]:
            print(f"   job {job_id}: {message}", flush=True)


if __name__ == "__main__":
    main()
