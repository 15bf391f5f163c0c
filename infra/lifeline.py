"""Processes that die with their parent, so no part of the system outlives the rest.

Linux sends a process the signal it chose with `prctl(PR_SET_PDEATHSIG)` when the thread
that started it exits, however that happens (SIGKILL included). The signal reaches the
direct children only: each level that starts processes of its own (dramatiq's main
process) must have its children ask for it too. Elsewhere (macOS) there is no such
call and these functions do nothing.
"""

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
# Resolved here, before any fork: nothing may be loaded between fork and exec.
_prctl = ctypes.CDLL(None).prctl if sys.platform == "linux" else None


def die_with_parent(signum: int, parent: int) -> None:
    """Have `signum` sent to this process when its parent dies. `parent` is the pid the
    caller knows as its parent: if that one died before the request took effect, this
    process has been handed to another parent already and leaves at once."""
    if _prctl is None:
        return
    _prctl(_PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:
        os._exit(1)


def dies_with_this_process(signum: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child gets `signum` when the calling
    thread ends, so start children from a thread that lives as long as the process."""
    parent = os.getpid()
    return lambda: die_with_parent(signum, parent)
