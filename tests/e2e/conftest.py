"""Shared e2e fixtures: where the build's binaries are and a runner for the dreamforge CLI."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("DREAMFORGE_BIN", ROOT / "build" / "bin"))


def run_dreamforge(*args, check=True, timeout=600, **kwargs):
    """Runs `dreamforge ARGS...`; returns the CompletedProcess (text output captured). With
    check=True a non-zero exit fails the test and shows the command's stderr."""
    command = [str(BIN / "dreamforge"), *map(str, args)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {proc.returncode}:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def bin_dir():
    """The directory holding the built binaries (env DREAMFORGE_BIN, default <repo>/build/bin)."""
    if not (BIN / "dreamforge").is_file():
        pytest.fail(f"no dreamforge binary in {BIN}; build it or set DREAMFORGE_BIN")
    return BIN


@pytest.fixture(scope="session")
def dreamforge(bin_dir):
    """run_dreamforge: call as dreamforge("model", "create-tiny", path, "--family", "sd1")."""
    return run_dreamforge
