"""Properties of the Gym aggregate over arbitrary command sequences."""

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import gym
from domain.errors import DomainError
from domain.events import DomainEvent, EventMetadata, Stamp
from domain.validation import ISO_4217
from infra.event_codec import CODEC
from tests.factories import gym_registered

T0 = datetime(2026, 1, 1, tzinfo=UTC)
META = EventMetadata(actor="prop", correlation_id="prop")

texts = st.text(min_size=0, max_size=60)
maybe_text = st.none() | texts
emails = st.from_regex(r"[a-z]{1,10}@[a-z]{1,10}\.(com|org)", fullmatch=True)
currencies = st.sampled_from(sorted(ISO_4217)) | st.text(max_size=4)
fees = st.integers(min_value=-10, max_value=10**6)

changes = st.builds(
    gym.ProfileChanges,
    name=st.just(msgspec.UNSET) | texts,
    email=st.just(msgspec.UNSET) | emails | texts,
    address=st.just(msgspec.UNSET) | maybe_text,
    description=st.just(msgspec.UNSET) | maybe_text,
    gym_type=st.just(msgspec.UNSET) | maybe_text,
    monthly_fee_cents=st.just(msgspec.UNSET) | fees,
    currency=st.just(msgspec.UNSET) | currencies,
)
credential_steps = st.sampled_from(["change_password", "grant", "revoke_newest", "revoke_unknown"])
commands = st.lists(
    st.one_of(changes, st.just("close"), st.just("rehash"), credential_steps), max_size=12
)


def check_invariants(state: gym.Gym) -> None:
    assert state.name
    assert state.name == state.name.strip()
    assert "@" in state.email
    assert state.email == state.email.lower()
    assert state.monthly_fee_cents >= 0
    assert state.currency in ISO_4217
    assert state.gym_type is None or len(state.gym_type) <= 50
    for text in (state.name, state.address, state.description, state.gym_type):
        # PostgreSQL text refuses NUL: such a value would poison the projector.
        assert text is None or "\x00" not in text
    assert not state.auditor_tokens & state.revoked_auditor_tokens


def credential_event(
    state: gym.Gym, step: str, i: int, stamp: Stamp, granted: list[UUID]
) -> DomainEvent | None:
    if step == "change_password":
        return gym.change_password(
            state,
            current_password="anything",
            new_password=f"pass phrase number {i}",
            verify_password=lambda _hash, _password: True,
            hash_password=lambda password: f"hash of {password}",
            stamp=stamp,
            token_generation=state.token_generation,
        )
    if step == "grant":
        granted.append(uuid4())
        return gym.grant_auditor_access(
            state, granted[-1], stamp.at + timedelta(hours=1), stamp,
            token_generation=state.token_generation,
        )  # fmt: skip
    token_id = granted[-1] if step == "revoke_newest" and granted else uuid4()
    return gym.revoke_auditor_access(state, token_id, stamp)


@settings(max_examples=300, deadline=None)
@given(steps=commands)
def test_every_command_sequence_keeps_invariants_and_replays_identically(
    steps: list[gym.ProfileChanges | str],
) -> None:
    first = gym_registered(uuid4(), Stamp(at=T0, metadata=META))
    events: list[DomainEvent] = [first]
    state = gym.evolve(None, first)
    granted: list[UUID] = []
    for i, step in enumerate(steps, start=1):
        stamp = Stamp(at=T0 + timedelta(seconds=i), metadata=META)
        try:
            if isinstance(step, gym.ProfileChanges):
                event: DomainEvent | None = gym.update_profile(state, step, stamp)
            elif step == "rehash":
                event = gym.rehash_password(state, f"rehashed-{i}", stamp)
            elif step == "close":
                event = gym.close(state, stamp)
            else:
                event = credential_event(state, step, i, stamp, granted)
        except DomainError:
            continue  # refused: no event, state unchanged
        if event is not None:
            events.append(event)
            state = gym.evolve(state, event)
        check_invariants(state)
    # Replay through the storage codec equals the state built while deciding.
    stored = [CODEC.encode(e) for e in events]
    assert gym.project(None, [CODEC.decode(t, s) for t, s in stored]) == state
    assert state.version == len(events)
    changes_made = sum(isinstance(e, gym.GymPasswordChanged) for e in events)
    assert state.token_generation == changes_made
