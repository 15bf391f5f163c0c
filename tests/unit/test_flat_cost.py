"""A command's cost must not grow with its gym's history (issue 14, lever 3): the
write side keeps the latest state of the streams it reads and brings it up to date
with the events after it, instead of replaying the gym's whole stream per command."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from commands.application import GymLedger
from commands.context import CommandContext
from commands.customers import NewCustomer, RegisterCustomer
from commands.gyms import NewGym, ProfileChanges, RegisterGym, UpdateGymProfile
from infra.clock import ManualClock
from infra.event_codec import CODEC, MsgspecMapper
from infra.passwords import Argon2Passwords

CHEAP = Argon2Passwords(time_cost=1, memory_kib=8)


class CountingMapper(MsgspecMapper):
    decoded = 0

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        CountingMapper.decoded += 1
        return super().to_domain_event(stored_event)


class CountingLedger(GymLedger):
    """Counts the stored events decoded: what reading a stream costs."""

    def __init__(self) -> None:
        super().__init__(None, passwords=CHEAP)

    def construct_mapper(self) -> Mapper[UUID]:
        return CountingMapper(CODEC)

    @property
    def decoded(self) -> int:
        return CountingMapper.decoded


def decoded_by(ledger: CountingLedger, command: Any, ctx: CommandContext) -> int:
    before = ledger.decoded
    ledger.handle(command, ctx)
    return ledger.decoded - before


def test_a_customer_command_reads_no_more_of_a_long_gym_stream_than_of_a_new_one() -> None:
    ledger = CountingLedger()
    ctx = CommandContext("t", "c", ManualClock(datetime(2026, 6, 15, tzinfo=UTC)))
    signup = NewGym(
        name="Long", email="long@example.com", password="violet kettle harbour",
        monthly_fee_cents=0, currency="EUR",
    )  # fmt: skip
    gym = ledger.handle(RegisterGym(signup=signup), ctx).id
    customer = NewCustomer(first_name="A", last_name="B", email="a@example.com")
    register = RegisterCustomer(gym_id=gym, details=customer)
    ledger.handle(register, ctx)  # warm: the first read of a stream replays it once
    on_a_new_gym = decoded_by(ledger, register, ctx)
    for i in range(2_000):
        changes = ProfileChanges(description=f"update {i}")
        ledger.handle(UpdateGymProfile(gym_id=gym, changes=changes), ctx)
    after = decoded_by(ledger, register, ctx)
    assert after <= on_a_new_gym + 1, (on_a_new_gym, after)
