"""Shared e2e fixtures: the build's bin dir and a runner for the dreamforge CLI."""
import pytest

from e2e_support import BIN, run_dreamforge


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
