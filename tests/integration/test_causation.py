"""causation_id: set by whoever knows what caused a command, stored with its events."""

from datetime import UTC, date, datetime
from typing import Any

from commands.application import GymLedger
from commands.context import CommandContext
from commands.customers import RegisterCustomer, register_customer
from domain.customer import MembershipExpired, NewCustomer
from infra.clock import ManualClock
from tests.conftest import unique_email
from tests.integration.helpers import head_position, register, wait_projected


def test_the_context_stamps_its_causation_and_none_by_default(ledger: GymLedger) -> None:
    gym_id = register(ledger).id
    details = NewCustomer(first_name="Cau", last_name="Se", email=unique_email("c"))
    command = RegisterCustomer(gym_id=gym_id, details=details)
    ctx = CommandContext(actor="t", correlation_id="corr", causation_id="message-7")
    caused = register_customer(ledger, command, ctx).id
    stored: list[Any] = list(ledger.events.get(caused))
    assert stored[-1].metadata.causation_id == "message-7"
    assert stored[-1].metadata.correlation_id == "corr"
    details = NewCustomer(first_name="No", last_name="Cause", email=unique_email("c"))
    plain = register_customer(
        ledger, RegisterCustomer(gym_id=gym_id, details=details), ctx.system()
    )
    unprompted: list[Any] = list(ledger.events.get(plain.id))
    assert unprompted[-1].metadata.causation_id is None


def test_the_expiry_job_names_its_message_as_the_cause(
    ledger: GymLedger, settings: Any, projector: None
) -> None:
    from workers.expiry import expire_due_memberships

    # Long ago, so no other test's customer is due by this run's clock.
    clock = ManualClock(datetime(2001, 1, 2, 12, tzinfo=UTC))
    gym_id = register(ledger).id
    details = NewCustomer(
        first_name="Ex",
        last_name="Pired",
        email=unique_email("c"),
        membership_end=date(2001, 1, 5),
    )
    ctx = CommandContext(actor="t", correlation_id="c", clock=clock)
    customer_id = register_customer(
        ledger, RegisterCustomer(gym_id=gym_id, details=details), ctx
    ).id
    wait_projected(settings.database_url, head_position(settings.database_url))
    clock.set(datetime(2001, 1, 10, 12, tzinfo=UTC))
    assert expire_due_memberships(ledger, settings.database_url, clock, "job-message-1") >= 1
    events: list[Any] = list(ledger.events.get(customer_id))
    expired = events[-1]
    assert isinstance(expired, MembershipExpired)
    assert expired.metadata.causation_id == "job-message-1"
