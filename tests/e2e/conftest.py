"""Shared e2e fixtures: the build's bin dir, a runner for the dreamforge CLI and started services:
on the embedded backends, or on real servers started for the session: PostgreSQL with
DREAMFORGE_E2E_DATABASE=postgres, Redis Streams with DREAMFORGE_E2E_QUEUE=redis, an S3 server
with DREAMFORGE_E2E_STORAGE=s3."""
import itertools
import os
import pathlib

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


def _chosen_backend(variable, embedded, real):
    backend = os.environ.get(variable, embedded)
    if backend not in (embedded, real):
        pytest.fail(f"{variable} must be {embedded} or {real}, not {backend!r}")
    return backend == real


def _started(server, what):
    try:
        return server.start()
    except (OSError, RuntimeError, AssertionError) as e:
        pytest.fail(f"cannot start {what} for the e2e tests: {e}")


@pytest.fixture(scope="session")
def postgres_server():
    """The PostgreSQL server of the session when DREAMFORGE_E2E_DATABASE=postgres, else None."""
    if not _chosen_backend("DREAMFORGE_E2E_DATABASE", "sqlite", "postgres"):
        yield None
        return
    from backends import PostgresServer

    server = _started(PostgresServer(), "PostgreSQL")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    """The Redis server of the session when DREAMFORGE_E2E_QUEUE=redis, else None."""
    if not _chosen_backend("DREAMFORGE_E2E_QUEUE", "db", "redis"):
        yield None
        return
    from backends import RedisServer

    server = _started(RedisServer(), "Redis")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_session_server(tmp_path_factory):
    """The S3 server of the session when DREAMFORGE_E2E_STORAGE=s3, else None."""
    if not _chosen_backend("DREAMFORGE_E2E_STORAGE", "file", "s3"):
        yield None
        return
    from s3_server import S3Server

    server = _started(S3Server(tmp_path_factory.mktemp("s3")), "the S3 server")
    yield server
    server.stop()


@pytest.fixture
def backend_env(postgres_server, redis_server, s3_session_server):
    """backend_env(data_dir): the environment that gives a service of `data_dir` its backends:
    nothing for the embedded ones (they live in the data dir), else a PostgreSQL database, Redis
    keys and an S3 bucket of its own, the same ones for every service of that data dir."""
    envs = {}

    def env_for(data_dir):
        key = os.path.realpath(data_dir)
        if key not in envs:
            env = {}
            if postgres_server is not None:
                env["DREAMFORGE_DATABASE_URL"] = postgres_server.create_database()
            if redis_server is not None:
                env["DREAMFORGE_QUEUE_URL"] = redis_server.url()
            if s3_session_server is not None:
                bucket = f"e2e-{next(_bucket_numbers)}"
                s3_session_server.create_bucket(bucket)
                env.update(s3_session_server.storage_env(bucket))
            envs[key] = env
        return envs[key]

    return env_for


@pytest.fixture
def stored_keys(backend_env, s3_session_server):
    """stored_keys(data_dir, prefix): the keys of the artifacts stored under `prefix` by the
    service of `data_dir`, in its data dir or in its bucket."""

    def keys_for(data_dir, prefix):
        storage = backend_env(data_dir).get("DREAMFORGE_STORAGE_URL", "")
        if storage.startswith("s3://"):
            return s3_session_server.list_keys(storage[len("s3://"):].split("?")[0], prefix)
        root = pathlib.Path(data_dir) / "artifacts"
        return [str(path.relative_to(root)) for path in (root / prefix).rglob("*") if path.is_file()]

    return keys_for


@pytest.fixture
def keys_cli(backend_env):
    """keys_cli(data_dir, *args, check=True): `dreamforge keys ARGS` on the database of the
    service of `data_dir` (SQLite there, or the PostgreSQL database the e2e run gives it)."""
    def run(data_dir, *args, check=True):
        return run_dreamforge("keys", *args, "--data-dir", data_dir, check=check,
                              env={**os.environ, **backend_env(data_dir)})

    return run


_bucket_numbers = itertools.count(1)  # each data dir gets a bucket of its own


@pytest.fixture
def start_service(bin_dir, tmp_path, backend_env):
    """start_service(*flags, data_dir=None, command="serve", env=None, model=True) starts a
    dreamforge service on a free port (with the tiny sd1 model "tiny" installed unless model=False)
    and stops it after the test."""
    from service_support import Service, install_tiny_model

    started = []

    def start(*flags, data_dir=None, command="serve", env=None, model=True):
        data_dir = data_dir or tmp_path / "data"
        if model and not (data_dir / "models" / "checkpoints" / "tiny").exists():
            install_tiny_model(data_dir)
        env = {**backend_env(data_dir), **(env or {})}
        service = Service(data_dir, *flags, command=command, env=env).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()
