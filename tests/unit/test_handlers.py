"""Every command handler through `ledger.handle`, on eventsourcing's in-memory store.

The same handlers run on PostgreSQL in every process; here they run in milliseconds:
idempotency replay, email-claim moves, retry on a lost race, tenant scoping.
"""

from datetime import UTC, date, datetime, timedelta
from itertools import count
from uuid import UUID, uuid4

import msgspec
import pytest

from commands.application import Command, GymLedger
from commands.context import CommandContext
from commands.customers import (
    ChangeCustomer,
    CustomerDetails,
    ExpireMembership,
    NewCustomer,
    RegisterCustomer,
    RemoveCustomer,
    load_customer,
)
from commands.gyms import (
    ChangePassword,
    CloseGym,
    GrantAuditorAccess,
    NewGym,
    PasswordChange,
    ProfileChanges,
    RegisterGym,
    RehashPassword,
    RevokeAuditorAccess,
    UpdateGymProfile,
    load_gym,
)
from commands.results import CommandResult
from domain import customer
from domain.errors import (
    EmailAlreadyRegistered,
    GymIsClosed,
    IdempotencyKeyReused,
    IncorrectPassword,
    InvalidValue,
    NotFound,
    StaleCredentials,
    VersionConflict,
)
from domain.events import DomainEvent
from infra.clock import ManualClock
from infra.event_store import Guards
from infra.passwords import Argon2Passwords

# argon2's cheapest parameters: the real algorithm, a millisecond per hash.
CHEAP = Argon2Passwords(time_cost=1, memory_kib=8)
PASSWORD = "violet kettle harbour"
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
_emails = count()


def email() -> str:
    return f"owner{next(_emails)}@example.com"


@pytest.fixture
def ledger() -> GymLedger:
    return GymLedger(None, passwords=CHEAP)


@pytest.fixture
def ctx() -> CommandContext:
    return CommandContext(actor="test", correlation_id="req", clock=ManualClock(NOW))


def signup(
    address: str | None = None, key: str | None = None, fingerprint: str = "", **changes: object
) -> RegisterGym:
    new = NewGym(
        name="Iron Temple",
        email=address or email(),
        password=PASSWORD,
        monthly_fee_cents=4900,
        currency="EUR",
    )
    new = msgspec.structs.replace(new, **changes)
    return RegisterGym(signup=new, idempotency_key=key, fingerprint=fingerprint)


def new_customer(gym_id: UUID, **changes: object) -> RegisterCustomer:
    details = NewCustomer(first_name="Ann", last_name="Lee", email="ann@example.com")
    return RegisterCustomer(gym_id=gym_id, details=msgspec.structs.replace(details, **changes))


def handle(ledger: GymLedger, ctx: CommandContext, command: Command) -> CommandResult:
    return ledger.handle(command, ctx)


def test_a_signup_retried_with_its_key_is_the_same_gym_and_writes_nothing(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    first = handle(ledger, ctx, signup("a@example.com", key="k1"))
    again = handle(ledger, ctx, signup("a@example.com", key="k1"))
    assert (again.id, again.replayed) == (first.id, True)
    assert ledger.recorder.max_notification_id() == first.position
    with pytest.raises(IdempotencyKeyReused):  # the same key, another body (its digest)
        handle(ledger, ctx, signup("a@example.com", key="k1", fingerprint="other", name="B"))
    with pytest.raises(IdempotencyKeyReused):  # another password is another body too
        handle(ledger, ctx, signup("a@example.com", key="k1", password="amber lantern meadow"))


def test_an_email_belongs_to_one_open_gym_and_moves_with_a_profile_change(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym = handle(ledger, ctx, signup("first@example.com"))
    with pytest.raises(EmailAlreadyRegistered):
        handle(ledger, ctx, signup("First@Example.com"))
    moved = ProfileChanges(email="second@example.com")
    handle(ledger, ctx, UpdateGymProfile(gym_id=gym.id, changes=moved))
    assert load_gym(ledger, gym.id).email == "second@example.com"
    handle(ledger, ctx, signup("first@example.com"))  # released by the move
    with pytest.raises(EmailAlreadyRegistered):
        handle(ledger, ctx, signup("second@example.com"))


def test_closing_a_gym_frees_its_email_and_refuses_later_commands(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym = handle(ledger, ctx, signup("closing@example.com"))
    handle(ledger, ctx, CloseGym(gym_id=gym.id))
    with pytest.raises(GymIsClosed):
        handle(ledger, ctx, UpdateGymProfile(gym_id=gym.id, changes=ProfileChanges(name="X")))
    with pytest.raises(GymIsClosed):
        handle(ledger, ctx, new_customer(gym.id))
    handle(ledger, ctx, signup("closing@example.com"))


def test_credentials_commands(ledger: GymLedger, ctx: CommandContext) -> None:
    gym = handle(ledger, ctx, signup())
    token = uuid4()
    grant = GrantAuditorAccess(
        gym_id=gym.id, token_id=token, expires_at=NOW + timedelta(days=1), token_generation=0
    )
    handle(ledger, ctx, grant)
    wrong = PasswordChange(current_password="not it at all", new_password="amber lantern meadow")
    with pytest.raises(IncorrectPassword):
        handle(ledger, ctx, ChangePassword(gym_id=gym.id, change=wrong, token_generation=0))
    right = msgspec.structs.replace(wrong, current_password=PASSWORD)
    handle(ledger, ctx, ChangePassword(gym_id=gym.id, change=right, token_generation=0))
    state = load_gym(ledger, gym.id)
    assert state.token_generation == 1
    assert token in state.revoked_auditor_tokens  # ended by the password change
    with pytest.raises(StaleCredentials):  # a token of the generation before
        handle(ledger, ctx, msgspec.structs.replace(grant, token_id=uuid4()))
    with pytest.raises(NotFound):
        handle(ledger, ctx, RevokeAuditorAccess(gym_id=gym.id, token_id=uuid4()))
    again = handle(ledger, ctx, RevokeAuditorAccess(gym_id=gym.id, token_id=token))
    assert again.position == 0  # revoked already: nothing new is recorded


def test_a_rehash_happens_only_for_the_verified_outdated_hash(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym = handle(ledger, ctx, signup())
    current = load_gym(ledger, gym.id).password_hash
    # Hashed with today's (cheap) parameters: nothing to do.
    same = RehashPassword(gym_id=gym.id, password=PASSWORD, verified_hash=current)
    assert handle(ledger, ctx, same).position == 0
    # The ledger's parameters change (as OWASP's did): the next login's rehash lands once.
    ledger.passwords = Argon2Passwords(time_cost=2, memory_kib=8)
    assert handle(ledger, ctx, same).position > 0
    assert handle(ledger, ctx, same).position == 0  # that hash is no longer the gym's


def test_customer_commands_are_scoped_to_their_gym(ledger: GymLedger, ctx: CommandContext) -> None:
    mine, theirs = handle(ledger, ctx, signup()).id, handle(ledger, ctx, signup()).id
    customer = handle(ledger, ctx, new_customer(mine))
    for command in (
        ChangeCustomer(gym_id=theirs, customer_id=customer.id, details=CustomerDetails(notes="x")),
        RemoveCustomer(gym_id=theirs, customer_id=customer.id),
        ChangeCustomer(gym_id=mine, customer_id=mine, details=CustomerDetails(notes="x")),
    ):
        with pytest.raises(NotFound):  # another gym's customer, or not a customer at all
            handle(ledger, ctx, command)
    with pytest.raises(NotFound):
        load_customer(ledger, theirs, customer.id)


def test_a_customer_registration_retried_with_its_key(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym = handle(ledger, ctx, signup()).id
    first = handle(ledger, ctx, msgspec.structs.replace(new_customer(gym), idempotency_key="c1"))
    again = handle(ledger, ctx, msgspec.structs.replace(new_customer(gym), idempotency_key="c1"))
    assert (again.id, again.replayed) == (first.id, True)
    other_body = msgspec.structs.replace(
        new_customer(gym), idempotency_key="c1", fingerprint="another body"
    )
    with pytest.raises(IdempotencyKeyReused):
        handle(ledger, ctx, other_body)


def test_a_precondition_is_checked_after_the_request_s_own_rules(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym = handle(ledger, ctx, signup()).id
    customer = handle(ledger, ctx, new_customer(gym))
    change = ChangeCustomer(
        gym_id=gym, customer_id=customer.id, details=CustomerDetails(notes="v"), expected_version=1
    )
    assert handle(ledger, ctx, change).version == 2
    with pytest.raises(VersionConflict):  # version 1 is gone
        handle(ledger, ctx, change)
    bad = msgspec.structs.replace(change, details=CustomerDetails(email="not an email"))
    with pytest.raises(InvalidValue):  # wrong on its own: 422, not 412
        handle(ledger, ctx, bad)
    with pytest.raises(VersionConflict):
        handle(ledger, ctx, RemoveCustomer(gym_id=gym, customer_id=customer.id, expected_version=1))
    handle(ledger, ctx, RemoveCustomer(gym_id=gym, customer_id=customer.id, expected_version=2))
    with pytest.raises(NotFound):
        handle(ledger, ctx, RemoveCustomer(gym_id=gym, customer_id=customer.id))


class RacingLedger(GymLedger):
    """Another process writes to the customer's stream just before each of this
    process's next `losses` appends to it: a real conflict in the store."""

    def __init__(self) -> None:
        super().__init__(None, passwords=CHEAP)
        self.rival: UUID | None = None
        self.losses = 0

    def append(self, *events: DomainEvent | None, guards: Guards | None = None) -> int:
        if self.losses and any(e is not None and e.originator_id == self.rival for e in events):
            self.losses -= 1
            assert self.rival is not None
            current = load_customer(self, None, self.rival)
            notes = CustomerDetails(notes=f"rival {uuid4()}")
            stamp = CommandContext.system().stamp()
            super().append(*customer.change(current, notes, today=date(2026, 6, 15), stamp=stamp))
        return super().append(*events, guards=guards)


def test_an_unconditional_change_that_loses_a_race_is_decided_again(ctx: CommandContext) -> None:
    racing = RacingLedger()
    gym = handle(racing, ctx, signup()).id
    created = handle(racing, ctx, new_customer(gym))
    racing.rival, racing.losses = created.id, 2
    change = ChangeCustomer(gym_id=gym, customer_id=created.id, details=CustomerDetails(phone="1"))
    result = handle(racing, ctx, change)
    assert (result.version, racing.losses) == (1 + 2 + 1, 0)  # two rival writes, then ours
    assert load_customer(racing, gym, created.id).phone == "1"
    # With an expected version the lost race is the answer: 412, nothing written.
    racing.losses = 1
    stale = msgspec.structs.replace(
        change, details=CustomerDetails(phone="2"), expected_version=result.version
    )
    with pytest.raises(VersionConflict):
        handle(racing, ctx, stale)
    assert load_customer(racing, gym, created.id).phone == "1"


def test_expiry_is_recorded_once_when_the_membership_has_lapsed(
    ledger: GymLedger, ctx: CommandContext
) -> None:
    gym = handle(ledger, ctx, signup()).id
    ended = handle(ledger, ctx, new_customer(gym, membership_end=date(2026, 6, 1)))
    running = handle(ledger, ctx, new_customer(gym, membership_end=date(2026, 7, 1)))
    assert handle(ledger, ctx, ExpireMembership(customer_id=ended.id)).position > 0
    assert handle(ledger, ctx, ExpireMembership(customer_id=ended.id)).position == 0
    assert handle(ledger, ctx, ExpireMembership(customer_id=running.id)).position == 0
