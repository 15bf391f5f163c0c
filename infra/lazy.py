"""One shared instance per process, made on first use, safe under threads.

`functools.cache` on a no-argument factory is not enough for resources: when
several threads make the first call together (four dramatiq threads receiving
their first messages at once), each runs the factory, one result is kept and
the others, connection pools with threads and open connections, are dropped
half-used and later fail in their finalizers.
"""

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def shared(factory: Callable[[], T]) -> Callable[[], T]:
    lock = threading.Lock()
    made: list[T] = []

    @functools.wraps(factory)
    def get() -> T:
        if not made:
            with lock:
                if not made:
                    made.append(factory())
        return made[0]

    return get
