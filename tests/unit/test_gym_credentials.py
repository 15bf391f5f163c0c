"""The gym's credentials: password changes, auditor-access revocation and the
password rules (pure domain code; the strength check is the real zxcvbn)."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain import gym
from domain import validation as v
from domain.errors import (
    GymIsClosed,
    IncorrectPassword,
    InvalidValue,
    NotFound,
    StaleCredentials,
)
from domain.events import EventMetadata, Stamp

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CURRENT = "correct horse"
NEW = "a fresh pass phrase"


def stamp(seconds: int = 0) -> Stamp:
    return Stamp(
        at=T0 + timedelta(seconds=seconds),
        metadata=EventMetadata(actor="tester", correlation_id="req-1"),
    )


def fake_hash(password: str) -> str:
    return "hashed:" + password[::-1]


def fake_verify(password_hash: str, password: str) -> bool:
    return password_hash == fake_hash(password)


def open_gym() -> gym.Gym:
    registered = gym.register(
        uuid4(),
        gym.NewGym(
            name="Iron Temple",
            email="owner@example.com",
            password=CURRENT,
            address=None,
            description=None,
            gym_type=None,
            monthly_fee_cents=0,
            currency="EUR",
        ),
        hash_password=fake_hash,
        stamp=stamp(),
    )
    return gym.evolve(None, registered)


def change(
    state: gym.Gym, current: str = CURRENT, new: str = NEW, generation: int | None = None
) -> gym.GymPasswordChanged:
    return gym.change_password(
        state,
        current_password=current,
        new_password=new,
        verify_password=fake_verify,
        hash_password=fake_hash,
        stamp=stamp(10),
        token_generation=state.token_generation if generation is None else generation,
    )


def grant(state: gym.Gym, seconds: int = 3600) -> tuple[gym.Gym, gym.AuditorAccessGranted]:
    granted = gym.grant_auditor_access(
        state,
        uuid4(),
        T0 + timedelta(seconds=seconds),
        stamp(1),
        token_generation=state.token_generation,
    )
    return gym.evolve(state, granted), granted


def test_a_new_gym_is_at_token_generation_zero() -> None:
    assert open_gym().token_generation == 0


def test_changing_the_password_stores_the_new_hash_and_moves_the_generation_on() -> None:
    state = open_gym()
    changed = change(state)
    assert changed.password_hash == fake_hash(NEW)
    assert changed.token_generation == 1
    assert changed.originator_version == state.version + 1
    after = gym.evolve(state, changed)
    assert after.password_hash == fake_hash(NEW)
    assert after.token_generation == 1
    assert after.updated_at == state.updated_at  # not a profile change
    again = gym.evolve(after, change(after, current=NEW, new="yet another pass phrase"))
    assert again.token_generation == 2


def test_a_token_of_an_earlier_generation_can_neither_change_the_password_nor_grant() -> None:
    """The read model may not show a password change yet; the log does."""
    state = open_gym()
    after = gym.evolve(state, change(state))
    with pytest.raises(StaleCredentials):
        change(after, current=NEW, new="yet another pass phrase", generation=0)
    with pytest.raises(StaleCredentials):
        gym.grant_auditor_access(
            after, uuid4(), T0 + timedelta(hours=1), stamp(11), token_generation=0
        )


def test_a_wrong_current_password_is_refused() -> None:
    with pytest.raises(IncorrectPassword):
        change(open_gym(), current="not the password")


@pytest.mark.parametrize(
    "new",
    [
        "short",
        "p" * 73,
        "password1",  # among the most common passwords
        "12345678",
        "iloveyou",
        "P@ssw0rd",  # l33t spelling of a common one
        "qwertyuiop",  # keyboard walk
        "aaaaaaaaaaaa",  # repetition
        "owner@example.com",  # the gym's own email
    ],
)
def test_a_weak_or_common_new_password_is_refused_naming_the_field(new: str) -> None:
    with pytest.raises(InvalidValue) as error:
        change(open_gym(), new=new)
    assert error.value.field == "new_password"


def test_the_new_password_must_differ_from_the_current_one() -> None:
    with pytest.raises(InvalidValue) as error:
        change(open_gym(), new=CURRENT)
    assert error.value.field == "new_password"


def test_a_closed_gym_cannot_change_its_password_or_revoke_access() -> None:
    state, granted = grant(open_gym())
    closed = gym.evolve(state, gym.close(state, stamp(2)))
    with pytest.raises(GymIsClosed):
        change(closed)
    with pytest.raises(GymIsClosed):
        gym.revoke_auditor_access(closed, granted.token_id, stamp(3))


def test_revoking_auditor_access_records_it_once() -> None:
    state, granted = grant(open_gym())
    assert granted.token_id in state.auditor_tokens
    revoked = gym.revoke_auditor_access(state, granted.token_id, stamp(5))
    assert revoked is not None
    assert revoked.token_id == granted.token_id
    assert revoked.originator_version == state.version + 1
    after = gym.evolve(state, revoked)
    assert granted.token_id in after.revoked_auditor_tokens
    assert granted.token_id not in after.auditor_tokens
    assert gym.revoke_auditor_access(after, granted.token_id, stamp(6)) is None


def test_revoking_an_unknown_auditor_token_is_not_found() -> None:
    with pytest.raises(NotFound):
        gym.revoke_auditor_access(open_gym(), uuid4(), stamp(5))


def test_a_password_change_ends_every_auditor_token_too() -> None:
    """A leaked password could have minted 90-day auditor tokens: they end with it."""
    state, first = grant(open_gym())
    state, second = grant(state)
    after = gym.evolve(state, change(state))
    assert after.revoked_auditor_tokens >= {first.token_id, second.token_id}
    assert not after.auditor_tokens
    assert gym.revoke_auditor_access(after, first.token_id, stamp(20)) is None


def test_signup_refuses_common_passwords_too() -> None:
    with pytest.raises(InvalidValue) as error:
        gym.register(
            uuid4(),
            gym.NewGym(
                name="Iron Temple",
                email="owner@example.com",
                password="password1",
                address=None,
                description=None,
                gym_type=None,
                monthly_fee_cents=0,
                currency="EUR",
            ),
            hash_password=fake_hash,
            stamp=stamp(),
        )
    assert error.value.field == "password"


@pytest.mark.parametrize("accepted", [CURRENT, NEW, "Zq7#vB2m", "Tr0ub4dor&3 horse"])
def test_reasonable_passwords_pass(accepted: str) -> None:
    assert v.password(accepted) == accepted


# A common password or word with digits or symbols around it is what cracking rules try
# first; zxcvbn alone scores "password-123" 2 (about a million guesses) and let it pass.
@pytest.mark.parametrize(
    "decorated",
    [
        "password-123",
        "qwerty-123",
        "welcome-123",
        "letmein-123",
        "Password-123!",
        "123-password",
        "!!password!!",
        "summer-2024",
        "liverpool-1892",
        "admin-1234",  # zxcvbn: 3, from "-1234" alone
        "password-12345",
        "kettle 42",
        "passw0rd-123",  # l33t inside, digits outside
    ],
)
def test_a_common_word_with_digits_or_symbols_around_it_is_refused(decorated: str) -> None:
    with pytest.raises(InvalidValue) as error:
        v.password(decorated)
    assert error.value.field == "password"


@pytest.mark.parametrize(
    "strong",
    [
        "correct horse",
        "violet kettle harbour 42",  # a phrase keeps its number
        "pass phrase number 42",
        "9 lives of a cat",
        "Purple-Monkey-7",
        "Zq7#vB2m",  # random: nothing around a word to take away
        "83729461",  # nothing but digits: judged as a whole
    ],
)
def test_phrases_and_random_passwords_with_digits_still_pass(strong: str) -> None:
    assert v.password(strong) == strong


def test_the_gyms_own_name_with_a_year_is_refused() -> None:
    with pytest.raises(InvalidValue):
        v.password("Iron Temple 2024", user_inputs=("owner@example.com", "Iron Temple"))
    assert v.password("Iron Temple 2024") == "Iron Temple 2024"  # another gym's name is fine
