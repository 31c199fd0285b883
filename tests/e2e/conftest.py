"""Shared e2e fixtures: the build's bin dir, a runner for the dreamforge CLI and started services
(on the embedded SQLite database, or a real PostgreSQL with DREAMFORGE_E2E_DATABASE=postgres)."""
import os

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


@pytest.fixture(scope="session")
def postgres_server():
    """The PostgreSQL server of the session when DREAMFORGE_E2E_DATABASE=postgres, else None."""
    backend = os.environ.get("DREAMFORGE_E2E_DATABASE", "sqlite")
    if backend not in ("sqlite", "postgres"):
        pytest.fail(f"DREAMFORGE_E2E_DATABASE must be sqlite or postgres, not {backend!r}")
    if backend == "sqlite":
        yield None
        return
    from backends import PostgresServer

    try:
        server = PostgresServer().start()
    except (OSError, RuntimeError) as e:
        pytest.fail(f"cannot start PostgreSQL for the e2e tests: {e}")
    yield server
    server.stop()


@pytest.fixture
def database_env(postgres_server):
    """database_env(data_dir): the environment that gives a service of `data_dir` its database:
    nothing for the embedded one (it lives in the data dir), else DREAMFORGE_DATABASE_URL of a
    PostgreSQL database of its own, the same one for every service of that data dir."""
    urls = {}

    def env_for(data_dir):
        if postgres_server is None:
            return {}
        key = os.path.realpath(data_dir)
        if key not in urls:
            urls[key] = postgres_server.create_database()
        return {"DREAMFORGE_DATABASE_URL": urls[key]}

    return env_for


@pytest.fixture
def start_service(bin_dir, tmp_path, database_env):
    """start_service(*flags, data_dir=None, command="serve", env=None, model=True) starts a
    dreamforge service on a free port (with the tiny sd1 model "tiny" installed unless model=False)
    and stops it after the test."""
    from service_support import Service, install_tiny_model

    started = []

    def start(*flags, data_dir=None, command="serve", env=None, model=True):
        data_dir = data_dir or tmp_path / "data"
        if model and not (data_dir / "models" / "checkpoints" / "tiny").exists():
            install_tiny_model(data_dir)
        env = {**database_env(data_dir), **(env or {})}
        service = Service(data_dir, *flags, command=command, env=env).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
