"""A real S3 server (MinIO, installed by scripts/install_s3_server) for the storage tests: started on
a free loopback port with a fresh data directory and its own credentials, stopped afterwards."""
import datetime
import hashlib
import hmac
import os
import pathlib
import socket
import subprocess
import time
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
import requests

from e2e_support import ROOT

MINIO = pathlib.Path(os.environ.get("DREAMFORGE_MINIO") or ROOT / ".tools" / "bin" / "minio")


def free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class S3Server:
    """MinIO on 127.0.0.1; `endpoint`, `access_key`, `secret_key`, and signed bucket creation."""

    access_key = "dreamforge-e2e"
    secret_key = "dreamforge-e2e-secret"

    def __init__(self, data_dir):
        self.data_dir = pathlib.Path(data_dir)
        self.port = free_loopback_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self, timeout=60):
        if not MINIO.is_file():
            pytest.fail(f"no S3 server for the storage tests: {MINIO} is missing; "
                        "run scripts/install_s3_server (or set DREAMFORGE_MINIO)")
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        env = {"MINIO_ROOT_USER": self.access_key, "MINIO_ROOT_PASSWORD": self.secret_key,
               "MINIO_BROWSER": "off", "MINIO_UPDATE": "off", "HOME": str(self.data_dir)}
        self.log = open(self.data_dir / "minio.log", "ab")
        self.process = subprocess.Popen(
            [str(MINIO), "server", "--quiet", "--address", f"127.0.0.1:{self.port}",
             "--console-address", f"127.0.0.1:{free_loopback_port()}", str(self.data_dir / "data")],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"{self.endpoint}/minio/health/ready", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError("the S3 server did not start:\n" +
                             (self.data_dir / "minio.log").read_text(errors="replace"))

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.log.close()

    def _signed(self, method, path, query=None):
        """A request signed with SigV4 (written here from the specification, independently of the
        service's signer); `query` is a dict of parameters."""
        now = datetime.datetime.now(datetime.timezone.utc)
        date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        host = f"127.0.0.1:{self.port}"
        payload = hashlib.sha256(b"").hexdigest()
        signed = "host;x-amz-content-sha256;x-amz-date"
        canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                                   for k, v in sorted((query or {}).items()))
        canonical = (f"{method}\n{path}\n{canonical_query}\nhost:{host}\n"
                     f"x-amz-content-sha256:{payload}\nx-amz-date:{date}\n\n{signed}\n{payload}")
        scope = f"{day}/us-east-1/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = _hmac(_hmac(_hmac(_hmac(f"AWS4{self.secret_key}".encode(), day), "us-east-1"), "s3"),
                    "aws4_request")
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        url = f"{self.endpoint}{path}" + (f"?{canonical_query}" if canonical_query else "")
        return requests.request(method, url, timeout=30, headers={
            "x-amz-date": date, "x-amz-content-sha256": payload,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                             f"SignedHeaders={signed}, Signature={signature}"})

    def create_bucket(self, bucket, timeout=30):
        # MinIO may say it is ready and still answer "not initialized yet" for a moment on a busy
        # machine: that answer is retried until the timeout.
        deadline = time.monotonic() + timeout
        while True:
            response = self._signed("PUT", f"/{bucket}")
            if "XMinioServerNotInitialized" not in response.text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 200, response.text

    def list_keys(self, bucket, prefix):
        """The keys of the objects in `bucket` under `prefix` (up to 1000)."""
        response = self._signed("GET", f"/{bucket}", {"list-type": "2", "prefix": prefix})
        assert response.status_code == 200, response.text
        return [element.text for element in ElementTree.fromstring(response.content).iter()
                if element.tag.endswith("}Key")]

    def storage_env(self, bucket):
        """The environment that points a dreamforge service at `bucket` on this server."""
        return {"DREAMFORGE_STORAGE_URL": f"s3://{bucket}?endpoint={self.endpoint}",
                "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
