"""`make run`: the API, the projector and the queue worker, kept running.

Starts embedded PostgreSQL/Redis when DATABASE_URL/REDIS_URL are unset, applies
migrations, opens the API's port, then runs API_WORKERS API processes, the projector
and the queue worker as its children and keeps them running. A child that exits is
started again after a pause that doubles with each crash in a row (0.5 s up to 30 s,
0.5 s again once it ran for a minute), with one log line and a count in
`gymledger_process_restarts_total`. Only a child that crashes more than
SUPERVISOR_MAX_RESTARTS times within SUPERVISOR_RESTART_WINDOW_SECONDS makes it give
up: then everything is stopped and it exits 1, naming the child.

Ctrl-C (or SIGTERM) stops the children gracefully. On every way out the children are
stopped before the embedded servers; when the supervisor itself is SIGKILLed, Linux
kills its children (PR_SET_PDEATHSIG) and infra/embedded.py's guardian stops
PostgreSQL, so no process of the run is ever left behind.
"""

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from infra.embedded import services
from infra.lifeline import dies_with_this_process
from infra.logs import configure_logging
from infra.settings import Settings, load_settings
from workers.restarts import RestartHistory, RestartPolicy

log = logging.getLogger("gymledger.supervisor")
DATA_DIR = Path(".data")
STOP_GRACE_SECONDS = 20
POLL_SECONDS = 0.2  # how soon an exit is noticed


def _fresh_metrics_dir() -> Path:
    """Every process writes its metrics here; the API's /metrics sums them up.
    Emptied at start so counters from a previous run do not leak in."""
    path = DATA_DIR / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path.resolve()


def _exit_cause(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


@dataclass
class Child:
    """One process the supervisor keeps running."""

    name: str  # "api", "projector" or "worker": the label in logs and metrics
    command: list[str]
    history: RestartHistory
    pass_fds: tuple[int, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    start_due: float | None = field(default=0.0)  # when to start it; None while it runs

    def start(self, env: dict[str, str], now: float) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own fixed argv, no shell
            self.command,
            env=env,
            pass_fds=self.pass_fds,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops us in order
            preexec_fn=dies_with_this_process(signal.SIGKILL),  # never outlive the supervisor
        )
        self.started_at, self.start_due = now, None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Keeps its children running until asked to stop or until one crashes too often."""

    def __init__(
        self,
        children: list[Child],
        env: dict[str, str],
        clock: Callable[[], float] = time.monotonic,
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.children = children
        self.env = env
        self.clock = clock
        self.stop_grace = stop_grace

    def run(self, stop: threading.Event) -> str | None:
        """Until `stop` is set (then None), or the reason it gives up. Children are
        started from this thread only: their death signal is tied to it."""
        while not stop.is_set():
            now = self.clock()
            for child in self.children:
                if child.proc is not None and child.start_due is None:
                    code = child.proc.poll()
                    if code is not None:
                        reason = self._exited(child, code, now)
                        if reason is not None:
                            return reason
                if child.start_due is not None and now >= child.start_due:
                    child.start(self.env, now)
            stop.wait(self._wait_seconds(now))
        return None

    def _wait_seconds(self, now: float) -> float:
        due = [c.start_due - now for c in self.children if c.start_due is not None]
        return max(0.0, min([POLL_SECONDS, *due]))

    def _exited(self, child: Child, code: int, now: float) -> str | None:
        from infra import metrics

        assert child.proc is not None
        _forget_live_metrics(child.proc.pid)
        delay = child.history.next_delay(child.started_at, now)
        fields = {"child": child.name, "child_pid": child.proc.pid, "exit_code": code}
        if delay is None:
            policy = child.history.policy
            reason = (
                f"{child.name} exited ({_exit_cause(code)}) after {policy.max_restarts} restarts"
                f" within {policy.window:g} s; giving up and stopping everything"
            )
            log.error(reason, extra=fields)
            return reason
        child.start_due = now + delay
        metrics.PROCESS_RESTARTS.labels(child.name).inc()
        log.warning(
            "child exited; restarting",
            extra={
                **fields,
                "cause": _exit_cause(code),
                "restart_in_seconds": delay,
                "restarts_in_window": child.history.recent,
            },
        )
        return None

    def stop_all(self) -> None:
        """SIGTERM every child, wait for all, SIGKILL (with their own children) the
        ones still running after `stop_grace` seconds."""
        running = [c for c in self.children if c.running()]
        for child in running:
            assert child.proc is not None
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        for child in running:
            assert child.proc is not None
            try:
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("child did not stop in time; killing it", extra={"child": child.name})
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)  # its own children too
                child.proc.wait()
            _forget_live_metrics(child.proc.pid)


@contextlib.contextmanager
def supervising(
    children: list[Child],
    env: dict[str, str],
    clock: Callable[[], float] = time.monotonic,
    stop_grace: float = STOP_GRACE_SECONDS,
) -> Iterator[Supervisor]:
    """A supervisor of `children`: however the block ends, exceptions included, they
    are all stopped when it does (and so before whatever encloses the block)."""
    supervisor = Supervisor(children, env, clock, stop_grace)
    try:
        yield supervisor
    finally:
        supervisor.stop_all()
        log.info("every process stopped")


def _forget_live_metrics(pid: int) -> None:
    """A dead process's in-flight gauges must not count in /metrics any more."""
    from prometheus_client import multiprocess

    from infra import metrics

    if metrics.multiprocess_enabled():
        multiprocess.mark_process_dead(pid)


def _children(settings: Settings, listener: socket.socket) -> list[Child]:
    policy = RestartPolicy(
        max_restarts=settings.supervisor_max_restarts,
        window=settings.supervisor_restart_window_seconds,
    )
    py = sys.executable
    # API_WORKERS API processes on one socket, WORKER_THREADS dramatiq threads.
    api = [py, "-m", "api.serve", "--fd", str(listener.fileno())]
    threads = os.environ.get("WORKER_THREADS", "4")
    worker = [py, "-m", "dramatiq", "workers.tasks", "--processes", "1", "--threads", threads]
    api_workers = int(os.environ.get("API_WORKERS", "1"))
    return [
        *(
            Child("api", api, RestartHistory(policy), pass_fds=(listener.fileno(),))
            for _ in range(api_workers)
        ),
        Child("projector", [py, "-m", "workers.projector"], RestartHistory(policy)),
        Child("worker", worker, RestartHistory(policy)),
    ]


@contextlib.contextmanager
def _listening(host: str, port: int) -> Iterator[socket.socket]:
    """The API's port, opened once here and shared by every API process: it stays open
    while they are replaced, so clients queue instead of being refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family, backlog=2048) as listener:
        listener.set_inheritable(True)
        yield listener


def supervise() -> int:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: the terminal closed
        signal.signal(signum, lambda *_: stop.set())
    # Before prometheus_client is first imported: it picks multiprocess mode then.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_fresh_metrics_dir())
    from workers.setup import migrate

    reason: str | None = None
    with services(DATA_DIR) as urls:
        env = {**os.environ, "DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        # Development secrets are made once under .data/ by load_settings itself, so the
        # children and the CLI find the same ones.
        settings = load_settings(env)  # fail fast, before any child starts
        log.info("migrations applied", extra={"applied": migrate(settings.database_url)})
        # On every way out, exceptions too, the children stop before the servers.
        with (
            _listening(settings.host, settings.port) as listener,
            supervising(_children(settings, listener), env) as supervisor,
        ):
            log.info("GymLedger running", extra={"url": f"http://{settings.host}:{settings.port}"})
            reason = supervisor.run(stop)
            # New connections are refused from now on instead of waiting unserved in the
            # backlog while the API processes finish the requests they have.
            listener.close()
    log.info("GymLedger stopped", extra={"embedded_stopped": list(urls.embedded)})
    if reason is not None:
        print(f"gymledger run: {reason}", file=sys.stderr)
        return 1
    return 0
