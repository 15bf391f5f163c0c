"""Domain events built directly, for tests (and the bench) that need a realistic log
without commands."""

from uuid import UUID

from domain import gym
from domain.events import Stamp


def gym_registered(gym_id: UUID, stamp: Stamp, email: str = "a@b.com") -> gym.GymRegistered:
    """A gym's first event, with a stand-in password hash (argon2 is slow and beside
    the point in these tests)."""
    return gym.register(
        gym_id,
        name="Gym",
        email=email,
        password="factory pass phrase",
        address=None,
        description=None,
        gym_type=None,
        monthly_fee_cents=0,
        currency="EUR",
        hash_password=lambda _: "not-a-hash",
        stamp=stamp,
    )
