"""What each service command needs beside it: `dreamforge api` starts no runner, so it needs none."""
import os
import re
import shutil
import subprocess

import requests

from e2e_support import BIN


def test_api_starts_and_is_ready_without_a_runner_beside_it(tmp_path):
    alone = tmp_path / "bin"
    alone.mkdir()
    shutil.copy2(BIN / "dreamforge", alone / "dreamforge")
    env = {k: v for k, v in os.environ.items() if k != "DREAMFORGE_RUNNER"}
    process = subprocess.Popen(
        [alone / "dreamforge", "api", "--data-dir", tmp_path / "data", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        output = []
        for line in process.stdout:
            output.append(line)
            serving = re.search(r"serving (http://[\d.]+:\d+)", line)
            if serving:
                break
        assert serving, "dreamforge api did not start:\n" + "".join(output)
        assert requests.get(serving.group(1) + "/readyz", timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
