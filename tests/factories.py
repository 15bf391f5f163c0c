"""Domain events built directly, for tests (and the bench) that need a realistic log
without commands."""

import uuid
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import psycopg

from domain import customer, gym
from domain.customer import CustomerDetails, NewCustomer
from domain.events import EventMetadata, Stamp
from infra.event_codec import CODEC


def gym_registered(gym_id: UUID, stamp: Stamp, email: str = "a@b.com") -> gym.GymRegistered:
    """A gym's first event, with a stand-in password hash (argon2 is slow and beside
    the point in these tests)."""
    return gym.register(
        gym_id,
        gym.NewGym(
            name="Gym",
            email=email,
            password="factory pass phrase",
            address=None,
            description=None,
            gym_type=None,
            monthly_fee_cents=0,
            currency="EUR",
        ),
        hash_password=lambda _: "not-a-hash",
        stamp=stamp,
    )


def synthetic_log(url: str, events: int, gym_id: uuid.UUID | None = None) -> uuid.UUID:
    """Store `events` real, codec-encoded events (one gym, its customers, some edits)
    with COPY: the fastest honest way to get a large log for catch-up and queries."""
    gym_id = gym_id or uuid.uuid4()
    meta = EventMetadata(actor="bench", correlation_id="bench")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows: list[tuple[uuid.UUID, int, str, bytes]] = []
    email = f"{gym_id.hex[:8]}@bench.example"
    first = gym_registered(gym_id, Stamp(at=start, metadata=meta), email)
    rows.append((gym_id, 1, *CODEC.encode(first)))
    # Membership ends spread from 180 days ago to two years ahead of the day the bench
    # runs: about a fifth lapsed, as in a real gym (fixed dates aged into "all lapsed").
    today = date.today()
    i = 0
    while len(rows) < events:
        i += 1
        stamp = Stamp(at=start + timedelta(milliseconds=i), metadata=meta)
        details = NewCustomer(
            first_name=f"Bench{i}",
            last_name=f"Load{i * 7919 % 100003}",
            email=f"member{i}@bench.example",
            date_of_birth=date(1950, 1, 1) + timedelta(i % 20000),
            membership_end=today + timedelta(days=i % 900 - 180),
            active=i % 10 != 0,
        )
        registered = customer.register(uuid.uuid4(), gym_id, details, today=today, stamp=stamp)
        rows.append((registered.originator_id, 1, *CODEC.encode(registered)))
        if i % 4 == 0 and len(rows) < events:  # some customers get edited
            state = customer.evolve(None, registered)
            change = customer.change(
                state,
                CustomerDetails(notes=f"note {i}"),
                today=today,
                stamp=stamp,
            )[0]
            rows.append((change.originator_id, 2, *CODEC.encode(change)))
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(
            "COPY gymledger_events (originator_id, originator_version, topic, state) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    return gym_id
