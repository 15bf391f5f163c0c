"""`make run`: the API, the projector and the queue worker in the foreground.

Starts embedded PostgreSQL/Redis when DATABASE_URL/REDIS_URL are unset, applies
migrations, then supervises the three processes: Ctrl-C (or SIGTERM) asks each
to stop gracefully, and if one dies the others are stopped too, so the
operator never keeps running half a system without noticing.
"""

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from infra.embedded import services
from infra.logs import configure_logging
from infra.settings import load_settings
from workers.setup import migrate

log = logging.getLogger("gymledger.supervisor")
DATA_DIR = Path(".data")
STOP_GRACE_SECONDS = 20


def _fresh_metrics_dir() -> Path:
    """Every process writes its metrics here; the API's /metrics sums them up.
    Emptied at start so counters from a previous run do not leak in."""
    path = DATA_DIR / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path.resolve()


def _commands(host: str, port: int) -> dict[str, list[str]]:
    py = sys.executable
    api = f"--host {host} --port {port} --no-access-log --timeout-graceful-shutdown 15"
    # API_WORKERS uvicorn processes, WORKER_THREADS dramatiq threads (both default small).
    api += f" --workers {os.environ.get('API_WORKERS', '1')}"
    api += f" --log-level {os.environ.get('LOG_LEVEL', 'info').lower()}"
    threads = os.environ.get("WORKER_THREADS", "4")
    return {
        "api": [py, "-m", "uvicorn", "api.app:create_app", "--factory", *api.split()],
        "projector": [py, "-m", "workers.projector"],
        "worker": [py, "-m", "dramatiq", "workers.tasks", "--processes", "1", "--threads", threads],
    }


def supervise() -> int:
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with services(DATA_DIR) as urls:
        env = {**os.environ, "DATABASE_URL": urls.database_url, "REDIS_URL": urls.redis_url}
        # Development secrets are made once under .data/ by load_settings itself, so the
        # children and the CLI find the same ones.
        settings = load_settings(env)  # fail fast, before any child starts
        env["PROMETHEUS_MULTIPROC_DIR"] = str(_fresh_metrics_dir())
        log.info("migrations applied", extra={"applied": migrate(settings.database_url)})
        children = {
            name: subprocess.Popen(cmd, env=env, start_new_session=True)  # noqa: S603
            for name, cmd in _commands(settings.host, settings.port).items()
        }
        log.info("GymLedger running", extra={"url": f"http://{settings.host}:{settings.port}"})
        exit_code = 0
        while not stop.wait(0.5):
            dead = [n for n, p in children.items() if p.poll() is not None]
            if dead:
                log.error("process exited; stopping the others", extra={"process": dead})
                exit_code = 1
                break
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in children.items():
            try:
                proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                log.error("process did not stop in time; killing", extra={"process": name})
                proc.kill()
                proc.wait()
        log.info("GymLedger stopped")
        return exit_code
