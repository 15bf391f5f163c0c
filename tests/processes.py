"""Starting and killing the project's own processes in tests."""

import contextlib
import os
import signal
import subprocess
import sys


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
