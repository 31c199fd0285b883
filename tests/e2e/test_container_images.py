"""Container images (deploy/): the dreamforge image built from build/ serves the API with a
read-only root filesystem as uid 10001, reports healthy, carries its version and commit, and
its CLI writes a model onto the data volume that the API then lists; the runner image speaks the
runner protocol over `docker run -i` and generates with no network."""
import json
import subprocess

import pytest

from container_support import (Container, Volume, build_images, docker, docker_missing_reason,
                               http_get)
from e2e_support import ROOT, wait_until
from runner_support import ProtocolProcess, txt2img_graph

pytestmark = pytest.mark.skipif(docker_missing_reason() is not None,
                                reason=str(docker_missing_reason()))

READ_ONLY = ("--read-only", "--tmpfs", "/tmp")


@pytest.fixture(scope="module")
def image():
    return build_images("dreamforge")["dreamforge"]


@pytest.fixture
def data_volume():
    with Volume() as volume:
        yield volume.name


def serve(image, volume, allow_unauthenticated=True):
    # Published on the host's loopback only; the service itself sees the container's address.
    allow = ("--env", "DREAMFORGE_ALLOW_UNAUTHENTICATED=true") if allow_unauthenticated else ()
    return Container(image, options=(*READ_ONLY, "--volume", f"{volume}:/data",
                                     "--publish", "127.0.0.1::8188", *allow))


def test_image_carries_the_version_and_commit(image):
    labels = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]["Labels"]
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == commit
    version = (ROOT / "CMakeLists.txt").read_text().split("project(dreamforge VERSION ")[1]
    assert labels["org.opencontainers.image.version"] == version.split()[0]
    assert image.endswith(f":{labels['org.opencontainers.image.version']}-{commit}")


def test_api_serves_from_a_read_only_root_as_uid_10001(image, data_volume):
    with serve(image, data_volume) as api:
        base = f"http://127.0.0.1:{api.host_port(8188)}"
        wait_until(lambda: http_get(base + "/healthz")[0] == 200, "/healthz 200", timeout=60)
        status, body = http_get(base + "/readyz")
        assert status == 200, body
        assert json.loads(body)["status"] == "ready"
        assert docker("exec", api.id, "id", "-u").stdout.strip() == "10001"
        assert api.inspect()["HostConfig"]["ReadonlyRootfs"] is True
        wait_until(lambda: api.inspect()["State"]["Health"]["Status"] == "healthy",
                   "the image's health check to pass", timeout=60)


def test_api_without_keys_refuses_the_containers_address_and_serves_with_one(image, data_volume):
    refused = docker("run", "--rm", *READ_ONLY, "--volume", f"{data_volume}:/data", image, "api",
                     check=False)
    assert refused.returncode == 1
    assert "refusing to listen on 0.0.0.0 without API keys" in refused.stderr
    made = docker("run", "--rm", *READ_ONLY, "--volume", f"{data_volume}:/data", image,
                  "keys", "create", "--name", "root", "--scope", "admin")
    key = made.stdout.strip()
    with serve(image, data_volume, allow_unauthenticated=False) as api:
        base = f"http://127.0.0.1:{api.host_port(8188)}"
        wait_until(lambda: http_get(base + "/healthz")[0] == 200, "/healthz 200", timeout=60)
        assert http_get(base + "/v1/jobs")[0] == 401
        assert http_get(base + "/v1/jobs", headers={"Authorization": f"Bearer {key}"})[0] == 200


def test_cli_in_the_image_installs_a_model_the_api_lists(image, data_volume):
    docker("run", "--rm", *READ_ONLY, "--volume", f"{data_volume}:/data", image,
           "model", "create-tiny", "--data-dir", "/data", "--name", "tiny", "--family", "sd1")
    with serve(image, data_volume) as api:
        base = f"http://127.0.0.1:{api.host_port(8188)}"
        wait_until(lambda: http_get(base + "/healthz")[0] == 200, "/healthz 200", timeout=60)
        status, body = http_get(base + "/v1/models")
        assert status == 200, body
        assert "tiny" in [model["id"] for model in json.loads(body)["models"]]


def test_the_image_refuses_to_write_outside_its_volumes(image, data_volume):
    proc = docker("run", "--rm", *READ_ONLY, "--volume", f"{data_volume}:/data",
                  "--entrypoint", "/bin/bash", image, "-c", "touch /usr/local/bin/x",
                  check=False)
    assert proc.returncode != 0
    assert "Read-only file system" in proc.stderr


@pytest.fixture(scope="module")
def runner_image():
    return build_images("runner-cpu")["dreamforge-runner-cpu"]


def test_runner_image_generates_over_stdin_without_network(runner_image, tmp_path, dreamforge):
    dreamforge("model", "create-tiny", tmp_path / "models" / "tiny-sd1", "--family", "sd1")
    output = tmp_path / "out"
    output.mkdir()
    output.chmod(0o777)  # the runner writes as uid 10001
    runner = ProtocolProcess(["docker", "run", "--interactive", "--rm", *READ_ONLY,
                              "--network", "none", "--volume", f"{tmp_path / 'models'}:/models:ro",
                              "--volume", f"{output}:/out", runner_image, "--device", "cpu",
                              "--input-dir", "/tmp"])
    try:
        runner.send({"type": "hello", "protocol": 2})
        hello = runner.next()
        assert hello["type"] == "hello" and hello["runner"] == "dreamforge-runner"
        events = runner.run({"type": "run", "id": "c1", "graph": txt2img_graph("tiny-sd1"),
                             "output_dir": "/out"})
        assert events[-1]["status"] == "succeeded", events
    finally:
        runner.close()
    images = sorted(output.glob("*.png"))
    assert len(images) == 1
    assert images[0].read_bytes().startswith(b"\x89PNG")
