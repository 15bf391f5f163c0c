"""Short runs inside `make test`; full sizes with RELIABILITY=full (`make test-reliability`)."""

import os

FULL = os.environ.get("RELIABILITY") == "full"


def size(short: int, full: int) -> int:
    return full if FULL else short
