"""Helpers shared by the end-to-end tests: where the binaries are, running the CLI."""
import os
import pathlib
import subprocess
import time

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


def install_tiny_split_files(data_dir, family):
    """The tiny split files `create-tiny --kind split` writes for a DiT family (flux, flux-schnell,
    sd3, zimage) under ComfyUI's file names, in data_dir's models folders."""
    run_dreamforge("model", "create-tiny", "--data-dir", data_dir, "--family", family,
                   "--kind", "split")


def run_on_terminal(argv, timeout=120):
    """Runs `argv` with a pseudo-terminal as stdin/stdout/stderr (so it draws progress bars);
    returns (exit code, everything it wrote, decoded)."""
    import pty
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([str(a) for a in argv], stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    return proc.wait(timeout=timeout), output.decode()


def wait_until(condition, what, timeout=120, explain=None):
    """Polls `condition` until it returns something truthy, and returns that; after `timeout` s
    fails naming `what` (and what `explain()` says, e.g. the service's output)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting until {what}"
                        + (":\n" + explain() if explain else ""))
        time.sleep(0.05)
