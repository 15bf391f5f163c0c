"""Fixtures of the integration tests that move the clock."""

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from infra.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2030, 1, 10, 12, tzinfo=UTC))


@pytest.fixture
def moved_client(settings: Any, clock: ManualClock, projector: None) -> Iterator[TestClient[Any]]:
    """The API with the test's clock, so "today" is whatever the test says. Tokens live
    by that clock too, and the tests move it by months: they get a lifetime to match."""
    from api.app import create_app

    a_year = 366 * 24 * 3600
    timed = dataclasses.replace(settings, jwt_ttl_seconds=a_year)
    with TestClient(create_app(timed, clock=clock)) as test_client:
        yield test_client
