"""The private PostgreSQL when the process that started it is SIGKILLed: its guardian
stops it; if the guardian is gone too, the next run adopts the server still running
(and stops it when done); if the server was killed as well, the next run starts it
again on the same data."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from tests.processes import kill_all, processes_of, wait_until


class Up:
    """`python -m infra.embedded up DIR`: the embedded servers until SIGTERM."""

    def __init__(self, data_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "infra.embedded", "up", str(data_dir)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert first.startswith("DATABASE_URL="), first
        self.database_url = first.strip().removeprefix("DATABASE_URL=")
        self.pgdata = data_dir / "postgres"

    def postmaster(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def guardian(self) -> psutil.Process:
        for child in psutil.Process(self.proc.pid).children():
            if "guard" in child.cmdline():
                return child
        raise AssertionError("no guardian")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(60) == 0


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    kill_all(processes_of(tmp_path))  # only if a test failed half-way


def store_a_row(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('survives')")


def stored_rows(url: str) -> list[tuple[str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT note FROM kept").fetchall()


def nothing_left(data_dir: Path) -> None:
    wait_until(lambda: not processes_of(data_dir), 30, "no process of the data dir left")


def test_the_guardian_stops_the_server_of_a_killed_process(data_dir: Path) -> None:
    first = Up(data_dir)
    store_a_row(first.database_url)
    first.kill()
    nothing_left(data_dir)
    assert (first.pgdata / ".handle_pids.json").read_text() == "[]"
    second = Up(data_dir)
    assert stored_rows(second.database_url) == [("survives",)]
    second.stop()
    nothing_left(data_dir)


def test_a_server_left_running_is_adopted_and_stopped_by_the_next_run(data_dir: Path) -> None:
    first = Up(data_dir)
    store_a_row(first.database_url)
    postmaster = first.postmaster()
    first.guardian().kill()  # as if its whole process tree had been killed
    first.kill()
    assert psutil.pid_exists(postmaster), "the server outlives both"
    second = Up(data_dir)
    assert second.postmaster() == postmaster  # adopted, not started again
    assert stored_rows(second.database_url) == [("survives",)]
    second.stop()  # its only live user: stops it
    nothing_left(data_dir)


def test_a_killed_server_is_started_again_on_its_data(data_dir: Path) -> None:
    first = Up(data_dir)
    store_a_row(first.database_url)
    postmaster = first.postmaster()
    first.guardian().kill()
    first.kill()
    psutil.Process(postmaster).kill()  # leaves postmaster.pid behind
    wait_until(lambda: not processes_of(data_dir / "postgres"), 30, "the server is gone")
    assert (first.pgdata / "postmaster.pid").exists()
    second = Up(data_dir)
    assert second.postmaster() != postmaster
    assert stored_rows(second.database_url) == [("survives",)]  # crash recovery kept it
    second.stop()
    nothing_left(data_dir)
