"""`dreamforge migrate` brings an empty database to the build's schema once, on SQLite and on a real
PostgreSQL."""
import pathlib

import pytest

from backends import PostgresServer
from e2e_support import run_dreamforge

ROOT = pathlib.Path(__file__).resolve().parents[2]


def migrations(dialect):
    return len(list((ROOT / "src" / "store" / "migrations" / dialect).glob("*.sql")))


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_migrate_applies_every_migration_once(dialect, tmp_path, request):
    if dialect == "postgres":
        url = request.getfixturevalue("postgres").create_database()
    else:
        url = f"sqlite://{tmp_path / 'db.sqlite3'}"
    count = migrations(dialect)
    first = run_dreamforge("migrate", "--database-url", url)
    assert first.returncode == 0, first.stderr
    assert f"at version {count} (applied {count} migrations from version 0)" in first.stdout
    again = run_dreamforge("migrate", "--database-url", url)
    assert again.returncode == 0 and f"at version {count} (up to date)" in again.stdout
