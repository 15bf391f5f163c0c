"""The supervisor of `gymledger run` on real child processes: restarts with growing
pauses, a count and one log line each; gives up on a crash loop; stops every child,
its own children too, however supervision ends."""

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from tests.processes import process_tree, still_running, wait_until
from workers.restarts import RestartHistory, RestartPolicy
from workers.supervisor import Child, supervising

FAST = RestartPolicy(first_delay=0.05, max_delay=0.2, max_restarts=4, window=60)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def restarts(name: str) -> float:
    value = REGISTRY.get_sample_value("gymledger_process_restarts_total", {"process": name})
    return value or 0.0


def test_a_crashing_child_is_restarted_with_growing_pauses_then_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crasher = Child("crasher", python("raise SystemExit(3)"), RestartHistory(FAST))
    before = restarts("crasher")
    with (
        caplog.at_level(logging.INFO, logger="gymledger.supervisor"),
        supervising([crasher], dict(os.environ)) as supervisor,
    ):
        reason = supervisor.run(threading.Event())
    assert reason is not None
    assert reason.startswith("crasher exited (exit status 3) after 4 restarts within 60 s")
    lines = [r for r in caplog.records if r.getMessage() == "child exited; restarting"]
    assert [r.__dict__["restart_in_seconds"] for r in lines] == [0.05, 0.1, 0.2, 0.2]
    assert {(r.__dict__["child"], r.__dict__["exit_code"]) for r in lines} == {("crasher", 3)}
    assert restarts("crasher") - before == 4
    assert caplog.records[-2].levelname == "ERROR"
    assert caplog.records[-2].getMessage() == reason


def test_a_child_that_exits_cleanly_is_restarted_too(caplog: pytest.LogCaptureFixture) -> None:
    quitter = Child("quitter", python("pass"), RestartHistory(FAST))
    stop = threading.Event()

    def restart_lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == "child exited; restarting"]

    def clock() -> float:
        if len(restart_lines()) >= 2:
            stop.set()
        return time.monotonic()

    with (
        caplog.at_level(logging.INFO, logger="gymledger.supervisor"),
        supervising([quitter], dict(os.environ), clock=clock) as supervisor,
    ):
        assert supervisor.run(stop) is None  # asked to stop: no reason to give
    assert [r.__dict__["exit_code"] for r in restart_lines()] == [0, 0]


def test_children_and_theirs_are_stopped_when_supervision_fails(tmp_path: Path) -> None:
    """An exception in the loop still stops every child; one that ignores SIGTERM is
    SIGKILLed after the grace period, together with the process it started."""
    ready = tmp_path / "ready"
    stubborn = python(
        "import pathlib, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(300)\n"
    )
    children = [
        Child("polite", python("import time; time.sleep(300)"), RestartHistory(FAST)),
        Child("stubborn", stubborn, RestartHistory(FAST)),
    ]
    trees: dict[int, float] = {}

    def failing_clock() -> float:
        if all(c.running() for c in children):
            wait_until(ready.exists, 30, "the stubborn child ignores SIGTERM and has a child")
            for child in children:
                assert child.proc is not None
                trees.update(process_tree(child.proc.pid))
            raise RuntimeError("a bug in the supervision loop")
        return time.monotonic()

    with (
        pytest.raises(RuntimeError, match="a bug"),
        supervising(children, dict(os.environ), clock=failing_clock, stop_grace=1) as supervisor,
    ):
        supervisor.run(threading.Event())
    assert len(trees) == 3
    # The grandchild dies with its SIGKILLed parent (parent-death signal), a moment
    # after the supervisor returns: a kill is delivered at once, a teardown is not.
    wait_until(lambda: not still_running(trees), 10, "every process of both trees stopped")
    assert [c.proc.returncode for c in children if c.proc] == [-signal.SIGTERM, -signal.SIGKILL]
