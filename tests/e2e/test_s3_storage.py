"""`dreamforge serve` with DREAMFORGE_STORAGE_URL=s3://... on a real S3 server (MinIO): artifacts go
to the private bucket and /v1/jobs/{id}/artifacts hands out presigned URLs that download them;
`dreamforge storage init` creates the bucket."""
import io
import os
import subprocess
import time

import pytest
import requests
from PIL import Image

from s3_server import S3Server
from service_support import generate_body


@pytest.fixture
def s3_server(tmp_path):
    server = S3Server(tmp_path / "s3").start()
    yield server
    server.stop()


def artifact_urls(service, job_id):
    listing = service.get(f"/v1/jobs/{job_id}/artifacts").json()
    return listing, [artifact["url"] for artifact in listing["artifacts"]]


def test_batch_artifacts_download_from_the_bucket_through_presigned_urls(start_service, s3_server):
    s3_server.create_bucket("artifacts")
    service = start_service(env=s3_server.storage_env("artifacts"))
    ready = service.get("/readyz")
    assert ready.status_code == 200, ready.text
    job = service.create_job(generate_body(count=2, seed=500))
    finished = service.wait_for_job(job["id"])
    assert finished["status"] == "succeeded", finished

    listing, urls = artifact_urls(service, job["id"])
    assert len(urls) == 2
    for artifact, url in zip(listing["artifacts"], urls):
        assert url.startswith(f"{s3_server.endpoint}/artifacts/dreamforge/default/jobs/{job['id']}/")
        assert f"X-Amz-Expires={listing['url_ttl_seconds']}" in url and "X-Amz-Signature=" in url
        response = requests.get(url, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "image/png"
        assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(response.content) == artifact["size"]
        image = Image.open(io.BytesIO(response.content))
        assert image.size == (64, 64)
        assert f"Seed: {artifact['seed']}" in image.text["parameters"]
    assert sorted(a["seed"] for a in listing["artifacts"]) == [500, 501]


def test_the_bucket_is_private_and_urls_cannot_be_tampered_with(start_service, s3_server):
    s3_server.create_bucket("private-art")
    service = start_service(env=s3_server.storage_env("private-art"))
    job = service.create_job(generate_body())
    assert service.wait_for_job(job["id"])["status"] == "succeeded"
    _, [url] = artifact_urls(service, job["id"])
    assert requests.get(url, timeout=30).status_code == 200
    assert requests.get(url.split("?")[0], timeout=30).status_code == 403
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert requests.get(tampered, timeout=30).status_code == 403


def test_presigned_urls_expire_after_the_ttl(start_service, s3_server):
    s3_server.create_bucket("short-lived")
    service = start_service("--url-ttl", "1", env=s3_server.storage_env("short-lived"))
    job = service.create_job(generate_body())
    assert service.wait_for_job(job["id"])["status"] == "succeeded"
    _, [url] = artifact_urls(service, job["id"])
    assert "X-Amz-Expires=1&" in url
    time.sleep(2.2)
    assert requests.get(url, timeout=30).status_code == 403


def test_a_missing_bucket_makes_the_service_not_ready_naming_it(start_service, s3_server):
    service = start_service(env=s3_server.storage_env("never-created"), model=False)
    response = service.get("/readyz")
    assert response.status_code == 503
    storage = response.json()["details"]["checks"]["storage"]
    assert storage["ok"] is False
    assert "bucket 'never-created' does not exist" in storage["error"]


def test_storage_init_waits_for_the_server_then_creates_the_bucket_once(bin_dir, tmp_path):
    server = S3Server(tmp_path / "s3")
    env = {**os.environ, **server.storage_env("made-by-init"), "DREAMFORGE_DATA_DIR": str(tmp_path / "data")}
    command = [str(bin_dir / "dreamforge"), "storage", "init", "--wait", "60"]
    # Started before the server, as a deployment's init step may be: it keeps trying.
    init = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(6)  # longer than one attempt's own retries last
        server.start()
        out, err = init.communicate(timeout=90)
        assert init.returncode == 0, err
        assert "created, writable" in out
        assert "not ready yet" in err
        assert server.list_keys("made-by-init", "") == []  # the probe object is gone
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already there, writable" in again.stdout, again.stderr
    finally:
        init.kill()
        server.stop()


def test_storage_init_without_a_server_fails_naming_the_endpoint(bin_dir, tmp_path):
    server = S3Server(tmp_path / "s3")  # never started
    env = {**os.environ, **server.storage_env("nowhere"), "DREAMFORGE_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([str(bin_dir / "dreamforge"), "storage", "init"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert server.endpoint in proc.stderr and "error[unavailable]" in proc.stderr
