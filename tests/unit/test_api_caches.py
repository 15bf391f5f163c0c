"""The API's per-process caches: open gyms and verified tokens (pure code)."""

import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from litestar.exceptions import NotAuthorizedException

from api.auth import claims_from_token, issue_token
from api.gym_cache import OpenGyms

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def test_a_remembered_gym_is_answered_until_forgotten() -> None:
    gyms = OpenGyms()
    gym_id = uuid4()
    gyms.remember(gym_id, "Europe/Oslo", gyms.epoch)
    assert gyms.timezone(gym_id) == "Europe/Oslo"
    gyms.forget(gym_id)
    assert gyms.timezone(gym_id) is None


def test_an_answer_read_while_a_change_was_announced_is_not_kept() -> None:
    gyms = OpenGyms()
    gym_id = uuid4()
    before_read = gyms.epoch
    gyms.forget(gym_id)  # the gym closed while its row was being read
    gyms.remember(gym_id, "UTC", before_read)
    assert gyms.timezone(gym_id) is None


def test_forget_all_and_the_size_bound() -> None:
    gyms = OpenGyms(max_gyms=2)
    first, second, third = uuid4(), uuid4(), uuid4()
    for gym_id in (first, second, third):
        gyms.remember(gym_id, "UTC", gyms.epoch)
    assert gyms.timezone(first) is None  # the oldest made room
    assert gyms.timezone(third) == "UTC"
    gyms.forget_all()
    assert gyms.timezone(second) is None
    assert gyms.timezone(third) is None


def test_a_verified_token_still_expires() -> None:
    gym_id = uuid4()
    token = issue_token(gym_id, SECRET, datetime.now(UTC) + timedelta(seconds=1))
    assert claims_from_token(token, SECRET) == (gym_id, "owner")  # now cached
    time.sleep(1.1)
    with pytest.raises(NotAuthorizedException):
        claims_from_token(token, SECRET)


def test_a_token_is_checked_against_the_secret_it_is_used_with() -> None:
    token = issue_token(uuid4(), SECRET, datetime.now(UTC) + timedelta(hours=1))
    claims_from_token(token, SECRET)
    with pytest.raises(NotAuthorizedException):
        claims_from_token(token, "another-secret-another-secret-another-secret")
