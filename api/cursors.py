"""Keyset pagination cursors: where a page of customers ends.

A cursor names the last customer of a page by the list's order: its created_at, as
microseconds since 1970 (UTC), and its id, as `<micros>.<32 hex digits>`. The format
is the published pattern, and every string that matches it is a cursor the server
takes (a moment past the years datetime holds means "after the newest", as it would):
a schema-valid request is never refused. Anything else is a 422 naming `after`.
"""

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

from domain.errors import InvalidValue

CURSOR_PATTERN = r"^[0-9]{1,18}\.[0-9a-f]{32}$(?!\n)"
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
_LATEST_MICROS = (_LATEST - _EPOCH) // timedelta(microseconds=1)


def cursor(created_at: datetime, customer_id: UUID) -> str:
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{customer_id.hex}"


def position(token: str) -> tuple[datetime, UUID]:
    """The (created_at, id) a cursor names."""
    if not _CURSOR.match(token):
        raise InvalidValue("after", "must be an X-Next-Cursor this server gave", "query")
    micros, _, hex_id = token.partition(".")
    moment = _EPOCH + timedelta(microseconds=min(int(micros), _LATEST_MICROS))
    return moment, UUID(hex=hex_id)
