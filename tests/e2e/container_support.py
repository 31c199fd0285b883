"""Helpers of the container tests: whether Docker can run here, building the images, running
containers that are removed afterwards."""
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest

from e2e_support import BIN, ROOT


def docker_missing_reason():
    """Why the container tests cannot run here (None when they can)."""
    if shutil.which("docker") is None:
        return "no docker client installed (Debian: apt-get install docker.io)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker daemon answers (docker info failed)"
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is missing: the base image is built with it (apt-get install mmdebstrap)"
    return None


def docker(*args, check=True, timeout=300):
    """Runs `docker ARGS...`; returns the CompletedProcess (text output captured)."""
    command = ["docker", *map(str, args)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {proc.returncode}:\n{proc.stderr}")
    return proc


def build_images(*names):
    """Builds the named images with deploy/build-images from the binaries in BIN; returns
    {image name: tag} as the script printed them (it prints each image's size too)."""
    proc = subprocess.run([str(ROOT / "deploy" / "build-images"), *names], capture_output=True,
                          text=True, timeout=900,
                          env={**os.environ, "DREAMFORGE_BUILD_DIR": str(BIN.parent)})
    print(proc.stdout)
    if proc.returncode != 0:
        pytest.fail(f"deploy/build-images {' '.join(names)} failed:\n{proc.stderr}")
    built = {}
    for line in proc.stdout.splitlines():
        reference = line.split()[0]
        built[reference.split(":")[0]] = reference
    return built


class Volume:
    """A named Docker volume removed on exit."""

    def __enter__(self):
        self.name = "dreamforge-test-" + uuid.uuid4().hex[:12]
        docker("volume", "create", self.name)
        return self

    def __exit__(self, *exc):
        docker("volume", "rm", "-f", self.name, check=False)


class Container:
    """A detached container removed (with its logs shown on failure) on exit."""

    def __init__(self, image, *args, options=()):
        self.command = ["run", "--detach", *options, image, *args]

    def __enter__(self):
        self.id = docker(*self.command).stdout.strip()
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            print(docker("logs", self.id, check=False).stderr)
        docker("rm", "--force", self.id, check=False)

    def inspect(self):
        return json.loads(docker("inspect", self.id).stdout)[0]

    def host_port(self, port):
        """The 127.0.0.1 port Docker published the container's port on."""
        bound = docker("port", self.id, f"{port}/tcp").stdout.split()[0]
        return int(bound.rsplit(":", 1)[1])


def http_get(url, headers=None):
    """(status, body) of GET url; (None, reason) when nothing answers."""
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        return None, str(error).encode()
