"""Partial updates: a field a client did not send is UNSET, and stays so.

The aggregates validate a change field by field (`checked`), record only what
differs from the state (`unless_same`) and fold a recorded change back into the
state (`or_current`); the decisions spell out every field, so mypy checks each one.
"""

from collections.abc import Callable
from typing import TypeVar

from msgspec import UNSET, UnsetType

T = TypeVar("T")


def checked(check: Callable[[T], T], value: T | UnsetType) -> T | UnsetType:
    """`check` applied to a value that was sent; UNSET stays UNSET."""
    return value if isinstance(value, UnsetType) else check(value)


def unless_same(new: T | UnsetType, old: T) -> T | UnsetType:
    """The new value, or UNSET when nothing was sent or it equals the old one."""
    return UNSET if isinstance(new, UnsetType) or new == old else new


def or_current(value: T | UnsetType, current: T) -> T:
    """The recorded value, or the current one where the change left it out."""
    return current if isinstance(value, UnsetType) else value
