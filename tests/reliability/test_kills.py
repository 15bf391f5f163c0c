"""SIGKILL, one process after another: nothing acknowledged is lost, nothing is done
twice, and nothing is left behind.

- The projector alone, killed again and again while customers are registered and gyms
  renamed, with the mail worker running: the read tables equal a full replay and the
  write side's own state, there is one outbox row per mail, and each mail arrives once.
- `gymledger run` (what `make run` starts) on the embedded default: SIGKILL the
  projector, the queue worker (its main process, then the consumer it forks) and an API
  worker in turn; each is restarted, and a new customer is readable and mailed once
  within seconds. Then SIGKILL the supervisor:
  every process of the run goes with it, and a second run starts on the same data.
- A crash loop: `gymledger run` gives up, stops everything and says why.
"""

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from commands.application import GymLedger
from commands.context import CommandContext
from commands.customers import RegisterCustomer, register_customer
from domain.customer import NewCustomer
from tests.conftest import signup_body, unique_email
from tests.integration.helpers import (
    gyms_table,
    head_position,
    register,
    rename_many,
    replayed_gyms,
    wait_projected,
)
from tests.processes import (
    describe,
    kill_all,
    process_tree,
    processes_of,
    spawn,
    still_running,
    stop,
    wait_until,
)
from tests.reliability.scale import size
from tests.smtp import Inbox, free_port

# Restarts, reconnects and the first projection after a kill take a few seconds at
# most; these deadlines only bound how long a failing test waits.
RECOVERY_SECONDS = 45
START_SECONDS = 180  # the first start runs initdb for the embedded PostgreSQL


def unsent_mails(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM mail_outbox WHERE status <> 'sent'").fetchone()
    return int(row[0]) if row else -1


def test_projector_killed_repeatedly_loses_and_repeats_nothing(
    fresh_database: str, inbox: Inbox
) -> None:
    kills_wanted = size(5, 20)
    env = {
        **os.environ,
        "DATABASE_URL": fresh_database,
        "PROJECTOR_BATCH_SIZE": "7",
        "QUEUE_NAMESPACE": f"kills-{uuid.uuid4().hex[:8]}",
        "MAIL_REQUEUE_AFTER_SECONDS": "5",
    }
    worker = spawn(["dramatiq", "workers.tasks", "--processes", "1", "--threads", "2"], env)
    ledger = GymLedger(fresh_database)
    tag = uuid.uuid4().hex[:8]
    emails: list[str] = [f"owner-{tag}-{i}@example.com" for i in range(3)]
    gyms = [register(ledger, email=email).id for email in emails]
    writing = threading.Event()
    writing.set()

    def register_customers() -> None:
        i = 0
        while writing.is_set():
            email = f"member-{tag}-{i}@example.com"
            details = NewCustomer(first_name="K", last_name=str(i), email=email)
            command = RegisterCustomer(gym_id=gyms[i % 3], details=details)
            register_customer(ledger, command, CommandContext.system())
            emails.append(email)
            i += 1
            time.sleep(0.01)

    def rename_gyms() -> None:  # updates racing on the same streams, not only new ones
        while writing.is_set():
            rename_many(ledger, gyms, count=12, workers=3)

    writers = [threading.Thread(target=register_customers), threading.Thread(target=rename_gyms)]
    for writer in writers:
        writer.start()
    rng = random.Random(11)
    kills = 0
    try:
        while kills < kills_wanted:
            projector = spawn(["workers.projector"], env)
            time.sleep(rng.uniform(0.2, 0.9))  # a random moment: mid-batch, mid-relay, idle
            stop(projector, signal.SIGKILL)
            kills += 1
    finally:
        writing.clear()
        for writer in writers:
            writer.join()
    final = spawn(["workers.projector"], env)
    try:
        wait_projected(fresh_database, head_position(fresh_database), timeout=60)
        wait_until(lambda: unsent_mails(fresh_database) == 0, 60, "every mail sent")
        replay = subprocess.run(
            [sys.executable, "-m", "workers.cli", "replay", "--verify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert gyms_table(fresh_database) == replayed_gyms(ledger, fresh_database)
        with psycopg.connect(fresh_database) as conn:
            outbox = conn.execute("SELECT count(*), count(DISTINCT dedupe_key) FROM mail_outbox")
            assert outbox.fetchone() == (len(emails), len(emails))  # one per mail, never two
        time.sleep(1.0)  # a duplicate would arrive now
        counts: dict[str, Any] = {e: len(inbox.to(e)) for e in emails}
        assert set(counts.values()) == {1}, {e: n for e, n in counts.items() if n != 1}
        assert kills == kills_wanted
    finally:
        stop(final)
        stop(worker)
        ledger.close()


class Run:
    """`gymledger run` with its working directory (and so `.data/`) in `directory`,
    on the embedded PostgreSQL and Redis, its output in a file there."""

    def __init__(self, directory: Path, port: int, **settings: str) -> None:
        drop = ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update({"PORT": str(port), "LOG_LEVEL": "INFO", **settings})
        self.directory = directory
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.log = directory / f"run-{uuid.uuid4().hex[:6]}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "run"],
                cwd=directory,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.output().splitlines() if x.startswith("{")]

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            assert self.proc.poll() is None, self.output()[-4000:]
            try:
                return httpx.get(f"{self.base}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, START_SECONDS, "gymledger run answers /health")

    def child(self, marker: str) -> psutil.Process | None:
        """The supervisor's running child whose command line contains `marker`."""
        assert self.proc.poll() is None, self.output()[-4000:]
        for proc in psutil.Process(self.proc.pid).children():
            with contextlib.suppress(psutil.Error):  # a zombie: exited, not yet reaped
                if marker in " ".join(proc.cmdline()):
                    return proc
        return None

    def grandchild(self, marker: str) -> psutil.Process | None:
        """The only child of the supervisor's child whose command line has `marker`."""
        child = self.child(marker)
        with contextlib.suppress(psutil.Error):
            grandchildren = child.children() if child else []
            return grandchildren[0] if len(grandchildren) == 1 else None
        return None

    def api_workers(self) -> list[psutil.Process]:
        """The processes that serve HTTP: those of the run listening on its port that
        have no children of their own (a managing parent may listen too)."""
        assert self.proc.poll() is None, self.output()[-4000:]
        found = []
        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                listening = any(
                    c.status == psutil.CONN_LISTEN and c.laddr.port == self.port
                    for c in proc.net_connections(kind="tcp")
                )
                if listening and not proc.children():
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        return self.proc.wait(90)


class Owner:
    """A gym owner talking to a run over HTTP (`api`: the run's, set when it is up)."""

    def __init__(self) -> None:
        self.api = ""
        self.body = signup_body()
        self.auth: dict[str, str] = {}
        self.customers: dict[str, str] = {}  # email -> id

    def sign_up(self) -> None:
        created = httpx.post(f"{self.api}/auth/signup", json=self.body, timeout=30)
        assert created.status_code == 201, created.text
        self.log_in()

    def log_in(self) -> None:
        form = {"username": self.body["email"], "password": self.body["password"]}
        login = httpx.post(f"{self.api}/auth/login", data=form, timeout=30)
        assert login.status_code == 200, login.text
        self.auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

    def _status(self, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        """The response, or None while nothing answers (a process is being replaced)."""
        try:
            return httpx.request(method, url, headers=self.auth, timeout=10, **kwargs)
        except httpx.TransportError:
            return None

    def readable(self, customer_id: str) -> bool:
        response = self._status("GET", f"{self.api}/customers/{customer_id}")
        return response is not None and response.status_code == 200

    def add_customer(self, after: str, inbox: Inbox) -> None:
        """A new customer is acknowledged, readable and mailed once within seconds."""
        email = unique_email("member")
        body = {"first_name": "Kill", "last_name": after, "email": email}
        # Resent under one Idempotency-Key while a connection fails: registered once.
        key = {**self.auth, "Idempotency-Key": uuid.uuid4().hex}

        def created() -> str | None:
            try:
                response = httpx.post(f"{self.api}/customers", json=body, headers=key, timeout=30)
            except httpx.TransportError:
                return None
            assert response.status_code == 201, response.text
            return str(response.json()["id"])

        customer_id = wait_until(created, RECOVERY_SECONDS, f"acknowledged {after}")
        self.customers[email] = customer_id
        wait_until(lambda: self.readable(customer_id), RECOVERY_SECONDS, f"readable {after}")
        wait_until(lambda: inbox.to(email), RECOVERY_SECONDS, f"welcome mail {after}")


API_WORKERS = 2
VICTIMS: dict[str, Callable[[Run], psutil.Process | None]] = {  # how to find each one
    "the projector": lambda run: run.child("workers.projector"),
    "the queue worker": lambda run: run.child("dramatiq"),
    # The process dramatiq forks to consume: its main process stops and is restarted.
    "the queue worker's consumer": lambda run: run.grandchild("dramatiq"),
    "an API worker": lambda run: next(iter(run.api_workers()), None),
}


def kill_and_wait_for_replacement(run: Run, what: str) -> None:
    """SIGKILL it: it and its own children die, and a new process takes its place."""
    victim = VICTIMS[what](run)
    assert victim is not None, f"no {what} found"
    tree = process_tree(victim.pid)
    victim.kill()
    wait_until(lambda: not still_running(tree), RECOVERY_SECONDS, f"{what} and its children gone")

    def replaced() -> bool:
        if what == "an API worker":
            return len([p for p in run.api_workers() if p.pid not in tree]) == API_WORKERS
        found = VICTIMS[what](run)
        return found is not None and found.pid not in tree

    wait_until(replaced, RECOVERY_SECONDS, f"{what} restarted")


def gone(known: dict[int, float], directory: Path) -> bool:
    """None of `known` runs any more, nor any process working in `directory`."""
    left = still_running(known) + processes_of(directory)
    if left:
        print("still running:", *describe(left), sep="\n  ")  # shown if the wait fails
    return not left


def restart_lines(run: Run) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in run.log_lines():
        if line["logger"] == "gymledger.supervisor" and "restart_in_seconds" in line:
            counts[line["child"]] = counts.get(line["child"], 0) + 1
    return counts


def test_make_run_survives_sigkill_of_each_process_and_of_itself(
    tmp_path: Path, inbox: Inbox
) -> None:
    owner = Owner()
    # Patient enough for every kill of the full run (the worker dies twice a round).
    run = Run(tmp_path, free_port(), API_WORKERS=str(API_WORKERS), SUPERVISOR_MAX_RESTARTS="10")
    try:
        run.wait_healthy()
        owner.api = f"{run.base}/api/v1"
        owner.sign_up()
        owner.add_customer("before any kill", inbox)
        rounds = size(1, 3)  # in a row, so the pauses grow: 0.5 s, 1 s, 2 s, ...
        for _ in range(rounds):
            for what in VICTIMS:
                kill_and_wait_for_replacement(run, what)
                owner.add_customer(f"after killing {what}", inbox)
        metrics = httpx.get(f"{run.base}/metrics", timeout=10).text
        restarted = {"projector": rounds, "worker": 2 * rounds, "api": rounds}
        for child, times in restarted.items():
            assert f'gymledger_process_restarts_total{{process="{child}"}} {times}.0' in metrics
        assert restart_lines(run) == restarted

        # The supervisor itself: every process of the run dies with it, the embedded
        # servers too, with no one left to stop them.
        everything = process_tree(run.proc.pid)
        run.proc.kill()
        run.proc.wait()
        wait_until(
            lambda: gone(everything, tmp_path), RECOVERY_SECONDS, "no process of the run left"
        )
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
        kill_all(processes_of(tmp_path))

    # A second run on the same data starts cleanly and has everything.
    second = Run(tmp_path, free_port(), API_WORKERS=str(API_WORKERS))
    try:
        second.wait_healthy()
        owner.api = f"{second.base}/api/v1"
        owner.log_in()
        for email, customer_id in owner.customers.items():
            assert owner.readable(customer_id), email
        owner.add_customer("in the second run", inbox)
    finally:
        code = second.stop() if second.proc.poll() is None else second.proc.returncode
        kill_all(processes_of(tmp_path))
    assert code == 0, second.output()[-4000:]
    assert "GymLedger stopped" in second.output()
    for email in [owner.body["email"], *owner.customers]:
        assert len(inbox.to(email)) == 1, email


def test_make_run_gives_up_on_a_crash_loop_and_stops_everything(
    tmp_path: Path, inbox: Inbox
) -> None:
    run = Run(
        tmp_path,
        free_port(),
        SUPERVISOR_MAX_RESTARTS="2",
        SUPERVISOR_RESTART_WINDOW_SECONDS="600",
    )
    try:
        run.wait_healthy()
        everything = process_tree(run.proc.pid)
        for _ in range(2):
            kill_and_wait_for_replacement(run, "the projector")
        everything |= process_tree(run.proc.pid)
        third = VICTIMS["the projector"](run)
        assert third is not None
        third.kill()  # the third crash within the window: no more restarts
        code = run.proc.wait(90)
        wait_until(lambda: gone(everything, tmp_path), RECOVERY_SECONDS, "every process stopped")
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
        kill_all(processes_of(tmp_path))
    assert code == 1, run.output()[-4000:]
    lines = [x for x in run.log_lines() if x["logger"] == "gymledger.supervisor"]
    errors = [x for x in lines if x["level"] == "ERROR"]
    assert errors, run.output()[-4000:]
    assert "projector" in errors[-1]["message"], errors[-1]
    assert errors[-1]["child"] == "projector"
    # Children first, then the embedded servers, then the last word.
    messages = [x["message"] for x in lines]
    assert messages.index("every process stopped") < messages.index("GymLedger stopped")
    assert lines[-1]["embedded_stopped"] == ["postgres", "redis"]
