"""Starting, finding and killing the project's own processes in tests."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import psutil

T = TypeVar("T")


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`python -m <args>` in a session of its own, so the whole group can be killed
    (dramatiq forks worker processes that must die with it, as on a dying machine)."""
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(30)


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def process_tree(pid: int) -> dict[int, float]:
    """pid -> start time of a process and of all its descendants. The start time tells
    the same process from a later one that happens to get a recycled pid."""
    tree: dict[int, float] = {}
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                tree[proc.pid] = proc.create_time()
    return tree


def _running(proc: psutil.Process) -> bool:
    """Alive and not a zombie (a killed process nobody has reaped yet is gone for us)."""
    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def still_running(known: Mapping[int, float]) -> list[psutil.Process]:
    """The processes of `known` (pid -> start time) that still run."""
    alive = []
    for pid, started in known.items():
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.create_time() == started and _running(proc):
                alive.append(proc)
    return alive


def processes_of(directory: Path) -> list[psutil.Process]:
    """Running processes whose working directory or command line lies in `directory`
    (a checkout's or a data directory's: the children of `gymledger run` work there,
    the embedded PostgreSQL in its data directory, Redis with `--dir` in it)."""
    inside = str(directory.resolve())
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            cwd, cmdline = proc.cwd(), " ".join(proc.cmdline())
            if (cwd == inside or cwd.startswith(inside + os.sep) or inside in cmdline) and (
                _running(proc)
            ):
                found.append(proc)
    return found


def describe(procs: list[psutil.Process]) -> list[str]:
    lines = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            lines.append(f"{proc.pid} (parent {proc.ppid()}): {' '.join(proc.cmdline())[:160]}")
    return lines


def kill_all(procs: list[psutil.Process]) -> None:
    """Clean-up after a failed test: SIGKILL what is left, so nothing outlives it."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)
