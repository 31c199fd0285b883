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


@pytest.fixture
def start_service(bin_dir, tmp_path):
    """start_service(*flags, data_dir=None, command="serve", env=None, model=True) starts a
    dreamforge service on a free port (with the tiny sd1 model "tiny" installed unless model=False)
    and stops it after the test."""
    from service_support import Service, install_tiny_model

    started = []

    def start(*flags, data_dir=None, command="serve", env=None, model=True):
        data_dir = data_dir or tmp_path / "data"
        if model and not (data_dir / "models" / "checkpoints" / "tiny").exists():
            install_tiny_model(data_dir)
        service = Service(data_dir, *flags, command=command, env=env).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
