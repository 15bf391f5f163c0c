"""The Gym aggregate's rules, without any I/O."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import msgspec
import pytest

from domain import gym
from domain.errors import GymIsClosed, InvalidValue
from domain.events import EventMetadata, Stamp

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(seconds: int = 0) -> Stamp:
    return Stamp(
        at=T0 + timedelta(seconds=seconds),
        metadata=EventMetadata(actor="tester", correlation_id="req-1"),
    )


def fake_hash(password: str) -> str:
    return "hashed:" + password[::-1]


def register(**overrides: object) -> gym.GymRegistered:
    fields: dict[str, object] = {
        "name": " Iron Temple ",
        "email": " Owner@Example.COM ",
        "password": "correct horse",
        "address": None,
        "description": "",
        "gym_type": "crossfit",
        "monthly_fee_cents": 4900,
        "currency": "eur",
    }
    fields.update(overrides)
    new = msgspec.convert(fields, gym.NewGym)
    return gym.register(uuid4(), new, hash_password=fake_hash, stamp=stamp())


def test_register_normalises_fields_and_hashes_the_password() -> None:
    event = register()
    assert event.name == "Iron Temple"
    assert event.email == "owner@example.com"
    assert event.currency == "EUR"
    assert event.description is None  # blank optional text is absent
    assert event.password_hash == fake_hash("correct horse")
    assert "correct horse" not in msgspec.json.encode(event).decode()
    assert event.metadata.actor == "tester"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "   "),
        ("name", "Iron\x00Temple"),
        ("description", "bell\x07"),
        ("address", "\ud800"),
        ("email", "not-an-email"),
        ("email", "a@b"),
        ("monthly_fee_cents", -1),
        ("currency", "EURO"),
        ("currency", "ABC"),
        ("gym_type", "x" * 51),
        ("password", "short"),
        ("password", "x" * 73),
    ],
)
def test_register_refuses_invalid_fields(field: str, value: object) -> None:
    with pytest.raises(InvalidValue) as error:
        register(**{field: value})
    assert error.value.field == field


def test_boundaries_are_inclusive() -> None:
    register(gym_type="x" * 50, password="Zq7#vB2m", monthly_fee_cents=0)
    register(password=("Zq7#vB2m plum " * 6)[:72])


def test_update_records_only_changed_fields() -> None:
    state = gym.evolve(None, register())
    event = gym.update_profile(
        state, gym.ProfileChanges(name="Iron Temple", gym_type="yoga"), stamp(5)
    )
    assert event is not None
    assert event.gym_type == "yoga"
    assert event.name is msgspec.UNSET
    assert event.originator_version == 2
    updated = gym.evolve(state, event)
    assert updated.gym_type == "yoga"
    assert updated.updated_at == T0 + timedelta(seconds=5)
    assert updated.created_at == T0


def test_update_without_changes_records_nothing() -> None:
    state = gym.evolve(None, register())
    assert gym.update_profile(state, gym.ProfileChanges(name=state.name), stamp()) is None
    assert gym.update_profile(state, gym.ProfileChanges(), stamp()) is None


def test_optional_fields_can_be_cleared() -> None:
    state = gym.evolve(None, register())
    event = gym.update_profile(state, gym.ProfileChanges(gym_type=None), stamp())
    assert event is not None
    assert gym.evolve(state, event).gym_type is None


def test_closed_gym_refuses_commands() -> None:
    state = gym.evolve(None, register())
    closed = gym.evolve(state, gym.close(state, stamp()))
    assert closed.closed
    with pytest.raises(GymIsClosed):
        gym.close(closed, stamp())
    with pytest.raises(GymIsClosed):
        gym.update_profile(closed, gym.ProfileChanges(name="New"), stamp())
    with pytest.raises(GymIsClosed):
        gym.rehash_password(closed, "new-hash", stamp())


def test_a_rehash_replaces_only_the_password_hash() -> None:
    state = gym.evolve(None, register())
    rehashed = gym.evolve(state, gym.rehash_password(state, "new-hash", stamp(5)))
    assert rehashed.password_hash == "new-hash"
    assert rehashed.version == state.version + 1
    assert msgspec.structs.replace(rehashed, password_hash=state.password_hash, version=1) == state
