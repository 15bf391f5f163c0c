"""Property: for any sequence of valid commands, replaying the log equals the read model."""

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.application import GymLedger
from commands.context import CommandContext
from commands.gyms import CloseGym, UpdateGymProfile, close_gym, update_gym_profile
from domain import gym
from domain.errors import DomainError
from domain.validation import ISO_4217
from tests.integration.helpers import (
    gyms_table,
    head_position,
    register,
    replayed_gyms,
    wait_projected,
)

valid_changes = st.builds(
    gym.ProfileChanges,
    name=st.just(msgspec.UNSET) | st.text(min_size=1, max_size=20).filter(str.strip),
    address=st.just(msgspec.UNSET) | st.none() | st.text(max_size=20),
    gym_type=st.just(msgspec.UNSET) | st.none() | st.text(max_size=50),
    monthly_fee_cents=st.just(msgspec.UNSET) | st.integers(0, 10**7),
    currency=st.just(msgspec.UNSET) | st.sampled_from(sorted(ISO_4217)),
)
steps = st.lists(
    st.tuples(st.integers(0, 2), st.one_of(valid_changes, st.just("close"))),
    min_size=1,
    max_size=10,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=steps)
def test_replayed_state_equals_the_projection(
    script: list[tuple[int, Any]], ledger: GymLedger, settings: Any, projector: None
) -> None:
    gym_ids = [register(ledger).id for _ in range(3)]
    for index, step in script:
        try:
            if step == "close":
                close_gym(ledger, CloseGym(gym_id=gym_ids[index]), CommandContext.system())
            else:
                update_gym_profile(
                    ledger,
                    UpdateGymProfile(gym_id=gym_ids[index], changes=step),
                    CommandContext.system(),
                )
        except DomainError:
            pass  # e.g. a command on a gym the script already closed
    wait_projected(settings.database_url, head_position(settings.database_url))
    assert gyms_table(settings.database_url) == replayed_gyms(ledger, settings.database_url)
