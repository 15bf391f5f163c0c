"""Shared per-process resources are made once, even when threads ask together."""

import threading
import time

from infra.lazy import shared


def test_threads_asking_together_get_one_instance_made_once() -> None:
    made: list[object] = []

    @shared
    def resource() -> object:
        time.sleep(0.05)  # long enough for every thread to arrive before it returns
        made.append(object())
        return made[-1]

    start = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(resource())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1
    assert got == made * 8
