"""Backend servers the end-to-end suite can run the service against, started for the session on
loopback: a real PostgreSQL (DREAMFORGE_E2E_DATABASE=postgres, a fresh database per data
directory) and a real Redis (DREAMFORGE_E2E_QUEUE=redis, a key prefix of its own per data
directory)."""
import itertools
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time


def postgres_bin_dir():
    """The folder of PostgreSQL's server programs (DREAMFORGE_POSTGRES_BIN, else the newest
    /usr/lib/postgresql/<version>/bin); raises RuntimeError saying what to install."""
    configured = os.environ.get("DREAMFORGE_POSTGRES_BIN")
    if configured:
        return pathlib.Path(configured)
    found = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda initdb: int(initdb.parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not installed: "
                           "install the Debian package postgresql (scripts/setup does) or set "
                           "DREAMFORGE_POSTGRES_BIN")
    return found[-1].parent


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL server: initdb into a temporary folder, listening on 127.0.0.1 at a
    free port with its socket in that folder. As root it runs as the postgres account (PostgreSQL
    refuses to run as root)."""

    def __init__(self):
        self.bin = postgres_bin_dir()
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="df_e2e_postgres_"))
        self.data = self.root / "data"
        self.port = free_port()
        self._names = itertools.count(1)

    def _server_program(self, program, *args):
        command = [str(self.bin / program), *map(str, args)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"
                               + (log.read_text() if log.exists() else ""))

    def start(self):
        """Creates and starts the server; on failure removes what it made and raises."""
        try:
            self._init_and_start()
        except (OSError, RuntimeError):
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def _init_and_start(self):
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres")
        self._server_program("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E",
                             "UTF8", "--locale=C.UTF-8", "-N")
        self._run_server()

    def _run_server(self):
        # fsync off is safe for tests (the machine does not crash, only the server may be killed);
        # commits stay synchronous, so a killed server keeps every job it acknowledged.
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port}"
                   f" -c unix_socket_directories={self.root} -c max_connections=300"
                   " -c fsync=off -c full_page_writes=off")
        self._server_program("pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-w", "-s",
                             "-o", options, "start")

    def restart(self, down_seconds):
        """Stops the server at once (as a crash would), waits, and starts it again on the same port
        with the same data."""
        self._server_program("pg_ctl", "-D", self.data, "-m", "immediate", "-s", "stop")
        time.sleep(down_seconds)
        self._run_server()

    def url(self, database):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self):
        """The URL of a new, empty database."""
        name = f"e2e_{next(self._names)}"
        subprocess.run([str(self.bin / "psql"), "-q", "-d", self.url("postgres"), "-c",
                        f"CREATE DATABASE {name}"], check=True, capture_output=True)
        return self.url(name)

    def stop(self):
        try:
            self._server_program("pg_ctl", "-D", self.data, "-m", "immediate", "-s", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class RedisServer:
    """A throwaway redis-server on 127.0.0.1 at a free port, keeping nothing on disk: a restart
    loses every stream, as a flush would (the queue must find its jobs again in the database)."""

    def __init__(self):
        self.program = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="df_e2e_redis_"))
        self.port = free_port()
        self.process = None
        self._prefixes = itertools.count(1)

    def start(self, timeout=20):
        if not os.path.exists(self.program):
            raise RuntimeError("redis-server is not installed: install the Debian package "
                               "redis-server (scripts/setup does)")
        log = open(self.root / "redis.log", "ab")
        self.process = subprocess.Popen(
            [self.program, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.root / 'redis.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING in time")

    def kill(self):
        """Stops the server at once, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self, down_seconds):
        """Kills the server, waits, and starts an empty one on the same port."""
        self.kill()
        time.sleep(down_seconds)
        self.start()

    def url(self, **options):
        """A queue URL with keys of its own (services given different URLs never share a job),
        with further query options such as reconcile_ms."""
        query = "".join(f"&{name}={value}" for name, value in options.items())
        return f"redis://127.0.0.1:{self.port}/0?prefix=e2e{next(self._prefixes)}{query}"

    def command(self, *args):
        """Runs one command with redis-cli and returns its output lines."""
        result = subprocess.run(["redis-cli", "-p", str(self.port), *map(str, args)],
                                capture_output=True, text=True, check=True)
        return result.stdout.splitlines()

    def stop(self):
        try:
            self.kill()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
