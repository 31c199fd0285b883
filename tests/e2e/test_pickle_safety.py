"""Pickled weights never run code: checkpoints whose unpickling would create a marker file (through
os.system, builtins.exec, subprocess.Popen, a __reduce__ nested deep in a state dict, in torch.save's
zip and legacy layouts and as a bare pickle) are loaded through the dreamforge binary, which must
refuse each with a clear unsafe_format error and leave no marker behind. Each payload is first
shown to be live: torch.load(weights_only=False) in a child process does create the marker."""
import os
import pickle
import subprocess
import sys

import pytest
import torch


class _System:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _Exec:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


class _Popen:
    def __init__(self, argv):
        self.argv = argv

    def __reduce__(self):
        return subprocess.Popen, (self.argv,)


def payloads(marker):
    touch = f"touch {marker}"
    weights = {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 1, 1)}
    return {
        "os_system": {"state_dict": {**weights, "evil": _System(touch)}},
        "builtins_exec": {"state_dict": {**weights, "evil": _Exec(f"open({str(marker)!r}, 'w').close()")}},
        "subprocess_popen": {"state_dict": {**weights, "evil": _Popen(["touch", str(marker)])}},
        "nested_reduce": {"state_dict": weights, "callbacks": {"list": [1, {"deep": [_System(touch)]}]}},
    }


def write_payload(obj, path, form):
    if form == "bare":
        path.write_bytes(pickle.dumps(obj, protocol=4))
    else:
        torch.save(obj, str(path), _use_new_zipfile_serialization=form == "zip")


def assert_payload_is_live(path, marker):
    """A normal unpickler runs the payload (so the refusal below is meaningful)."""
    subprocess.run([sys.executable, "-c", "import sys, time, torch\n"
                    "torch.load(sys.argv[1], weights_only=False)\n"
                    "time.sleep(0.2)", str(path)], capture_output=True, timeout=120)
    assert marker.exists(), f"{path.name} did not create its marker under torch.load"
    marker.unlink()


@pytest.mark.parametrize("form", ["zip", "legacy", "bare"])
@pytest.mark.parametrize("payload", ["os_system", "builtins_exec", "subprocess_popen", "nested_reduce"])
def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(dreamforge, tmp_path, form, payload):
    marker = tmp_path / "MARKER"
    checkpoint = tmp_path / "models" / f"evil_{payload}_{form}.ckpt"
    checkpoint.parent.mkdir()
    write_payload(payloads(marker)[payload], checkpoint, form)
    assert_payload_is_live(checkpoint, marker)

    proc = dreamforge("generate", "x", "--model", checkpoint, "--steps", "1", "--width", "64",
                      "--height", "64", "--device", "cpu", "--out", tmp_path / "out", check=False)
    assert proc.returncode != 0
    assert "error[unsafe_format]" in proc.stderr, proc.stderr
    assert checkpoint.name in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("extension", [".pt", ".pth", ".bin"])
def test_other_pickle_extensions_are_refused_the_same_way(dreamforge, tmp_path, extension):
    marker = tmp_path / "MARKER"
    path = tmp_path / f"evil{extension}"
    write_payload(payloads(marker)["os_system"], path, "zip")
    proc = dreamforge("generate", "x", "--model", path, "--steps", "1", "--width", "64",
                      "--height", "64", "--device", "cpu", "--out", tmp_path / "out", check=False)
    assert proc.returncode != 0 and "error[unsafe_format]" in proc.stderr, proc.stderr
    assert "system" in proc.stderr
    assert not marker.exists()
