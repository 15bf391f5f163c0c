"""Deciding on the latest version: retried until a time budget, not a count, runs out."""

import threading
from typing import Any, cast
from uuid import uuid4

import pytest

from api.errors import EXCEPTION_HANDLERS, contended
from commands.application import StreamConflict
from commands.context import CommandContext
from commands.latest import WriteContention, decide_on_latest
from commands.stream_locks import StreamLocks
from infra.clock import SystemClock


def context(seconds: float) -> CommandContext:
    return CommandContext.within(seconds, actor="test", correlation_id="c", clock=SystemClock())


class Losing:
    """An attempt that loses the race to another writer `losses` times, then appends."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.attempts = 0

    def __call__(self) -> str:
        self.attempts += 1
        if self.attempts <= self.losses:
            raise StreamConflict(uuid4(), version=self.attempts + 1)
        return "appended"


def test_an_unconditional_command_is_decided_again_until_it_lands() -> None:
    locks = StreamLocks()
    attempt = Losing(losses=25)  # far more than any fixed retry count used to allow
    assert decide_on_latest(locks, uuid4(), context(10), attempt) == "appended"
    assert attempt.attempts == 26
    assert len(locks) == 0  # nothing left behind for the stream


def test_a_conditional_command_gets_the_conflict_at_once() -> None:
    attempt = Losing(losses=1)
    with pytest.raises(StreamConflict):
        decide_on_latest(StreamLocks(), uuid4(), context(10), attempt, conditional=True)
    assert attempt.attempts == 1


def test_a_spent_budget_ends_the_retries_with_write_contention() -> None:
    locks = StreamLocks()
    attempt = Losing(losses=10**9)
    with pytest.raises(WriteContention) as refused:
        decide_on_latest(locks, uuid4(), context(0.05), attempt)
    assert refused.value.attempts == attempt.attempts >= 1
    assert len(locks) == 0


def test_writers_of_one_stream_in_one_process_take_turns() -> None:
    locks = StreamLocks()
    stream = uuid4()
    inside = threading.Event()
    release = threading.Event()

    def slow_writer() -> str:
        inside.set()
        release.wait(5)
        return "first"

    first = threading.Thread(
        target=lambda: decide_on_latest(locks, stream, context(10), slow_writer)
    )
    first.start()
    assert inside.wait(5)
    # The stream is held past this writer's whole budget: it gives up without running.
    waiting = Losing(losses=0)
    with pytest.raises(WriteContention) as refused:
        decide_on_latest(locks, stream, context(0.05), waiting)
    assert (refused.value.attempts, waiting.attempts) == (0, 0)
    # Another stream is not held up by it.
    assert decide_on_latest(locks, uuid4(), context(0.05), Losing(losses=0)) == "appended"
    release.set()
    first.join(5)
    assert decide_on_latest(locks, stream, context(1), waiting) == "appended"
    assert len(locks) == 0


def test_write_contention_is_a_503_that_says_when_to_retry() -> None:
    assert EXCEPTION_HANDLERS[WriteContention] is contended
    response = contended(cast(Any, None), WriteContention(uuid4(), 7))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.content["status_code"] == 503
