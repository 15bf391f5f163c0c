"""schemathesis extensions for this API, loaded through schemathesis.toml.

- `before_call` keeps generated requests clear of the rules an OpenAPI schema cannot
  state, so that `positive_data_acceptance` stays on for every operation that has
  such a rule. It touches only values that are valid on their own (an email, a
  password, a date, a key), so a request generated to be invalid stays invalid for
  the reason it was generated with (schemathesis also re-checks a case a hook
  changed). docs/RELIABILITY.md lists each one and why.
- `error_body_names_its_status`: a check of ours, run with `--checks all`: every
  error body's `status_code` is the response's status (the schema can only say it
  is an integer).
- A deserializer for the event feed's NDJSON, so its lines are validated too.
"""

import hashlib
import itertools
import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import schemathesis
from schemathesis import Case as GenericCase
from schemathesis.generation.meta import TestPhase

from api.headers import IDEMPOTENCY_KEY_PATTERN
from api.routes.reports import MOVEMENTS_MAX_DAYS
from domain import validation as v

Case = GenericCase[Any]
_ids = itertools.count()
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FUZZ_GYM_ID = "GYMLEDGER_FUZZ_GYM_ID"  # set by the run: the gym the token belongs to


def _valid_gym_id(body: dict[str, Any]) -> bool:
    return FUZZ_GYM_ID in os.environ and isinstance(body.get("gym_id"), str)


def _valid_email(value: object) -> bool:
    return isinstance(value, str) and re.search(v.EMAIL_PATTERN, value) is not None


def _valid_password(value: object) -> bool:
    return (
        isinstance(value, str)
        and v.PASSWORD_MIN <= len(value) <= v.PASSWORD_MAX
        and re.search(v.PASSWORD_PATTERN, value) is not None
    )


def _day(value: object) -> date | None:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _age(value: object) -> int | None:
    """A query value as sent: an int, or (in the coverage phase) its digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _unique_emails(body: dict[str, Any]) -> None:
    """Owner emails are unique across gyms: a second signup (or profile change) with
    an address already taken is 400, whatever the schema says."""
    if _valid_email(body.get("email")):
        body["email"] = f"fuzz-{os.getpid()}-{next(_ids)}@example.org"


def _strong_password(body: dict[str, Any], field: str) -> None:
    """Password strength (zxcvbn) is no pattern: a well-formed password becomes a
    long random one, which zxcvbn accepts."""
    if _valid_password(body.get(field)):
        body[field] = "Fz-" + hashlib.sha256(str(next(_ids)).encode()).hexdigest()[:24]


def _customer_dates(body: dict[str, Any], partial: bool) -> None:
    """A birth date must not be in the gym's future, and a membership must not end
    before it starts (in a PATCH, also against the stored other end)."""
    birth = _day(body.get("date_of_birth"))
    # Two days back: "today" is the gym's, in whatever zone the run gave it.
    latest = datetime.now(UTC).date() - timedelta(days=2)
    if birth is not None and birth > latest:
        body["date_of_birth"] = latest.isoformat()
    start, end = _day(body.get("membership_start")), _day(body.get("membership_end"))
    if start is not None and end is not None and end < start:
        body["membership_start"], body["membership_end"] = end.isoformat(), start.isoformat()
    if partial:
        for given, other in (
            ("membership_start", "membership_end"),
            ("membership_end", "membership_start"),
        ):
            if _day(body.get(given)) is not None and other not in body:
                body[other] = None


def _freeze_dates(body: dict[str, Any]) -> None:
    """A freeze must not end before it starts (cross-field)."""
    start, end = _day(body.get("starts_on")), _day(body.get("ends_on"))
    if start is not None and end is not None and end < start:
        body["starts_on"], body["ends_on"] = end.isoformat(), start.isoformat()


def _membership_days(body: dict[str, Any]) -> None:
    """A membership's days lie from 1900 to 9000 (a term or a renewal must not run off
    the calendar): a rule the schema states in words only, as `format: date` has no
    bounds."""
    for field in ("starts_on", "ends_on", "on", "effective_on"):
        day = _day(body.get(field))
        if day is not None:
            body[field] = min(max(day, v.DAY_MIN), v.DAY_MAX).isoformat()


def _distinct_idempotency_key(case: Case) -> None:
    """One key with two different bodies is refused (422) by design: the key names
    one request. Keys stay as generated, tied to the body they came with."""
    headers = case.headers
    key = headers.get("Idempotency-Key") if headers is not None else None
    if headers is not None and isinstance(key, str) and re.search(IDEMPOTENCY_KEY_PATTERN, key):
        digest = hashlib.sha256(repr(case.body).encode()).hexdigest()[:12]
        headers["Idempotency-Key"] = f"{key[:200]}-{digest}"


@schemathesis.deserializer("application/x-ndjson")
def ndjson(ctx: Any, response: Any) -> list[Any]:
    """GET /events with Accept: application/x-ndjson: the lines are the items of the
    array the document declares for it."""
    return [json.loads(line) for line in response.content.decode().splitlines() if line]


@schemathesis.check
def error_body_names_its_status(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Case
) -> bool | None:
    content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
    if response.status_code < 400 or "json" not in content_type[0]:
        return None
    body = response.json()
    if not isinstance(body, dict) or body.get("status_code") != response.status_code:
        raise AssertionError(f"error body does not name status {response.status_code}: {body}")
    return None


def _stateful(case: Case) -> bool:
    meta = case.meta
    return meta is not None and meta.phase.name == TestPhase.STATEFUL


@schemathesis.hook
def before_call(context: Any, case: Case, kwargs: dict[str, Any]) -> None:
    path, method, body = case.operation.path, case.method.upper(), case.body
    if isinstance(body, dict):
        if path.endswith("/auth/signup"):
            _unique_emails(body)
            _strong_password(body, "password")
        elif path.endswith("/gyms/me") and method == "PATCH":
            _unique_emails(body)
        elif path.endswith("/customers") and method == "POST":
            _customer_dates(body, partial=False)
        elif path.endswith("/customers/{customer_id}") and method == "PATCH":
            _customer_dates(body, partial=True)
        elif path.endswith("/memberships/{membership_id}/freeze"):
            _membership_days(body)
            _freeze_dates(body)
        elif "/memberships" in path and method == "POST":
            _membership_days(body)
        elif path.endswith("/audit/verify") and method == "POST" and _valid_gym_id(body):
            # A checkpoint names its gym: only the caller's own can be verified.
            body["gym_id"] = os.environ[FUZZ_GYM_ID]
    if method == "POST":
        _distinct_idempotency_key(case)
    query = case.query
    reads_customer = path.endswith("/customers/{customer_id}") and method == "GET"
    if reads_customer and _stateful(case) and isinstance(query, dict):
        # In a sequence, this GET is how a DELETE is checked (use_after_free); a past
        # moment or version shows the removed customer by design (time travel), so
        # sequences read the present. The other phases send both parameters.
        query.pop("as_of", None)
        query.pop("version", None)
    if path.endswith("/customers") and method == "GET" and isinstance(query, dict):
        low, high = _age(query.get("min_age")), _age(query.get("max_age"))
        if low is not None and high is not None and low > high:  # min_age <= max_age
            query["min_age"], query["max_age"] = query["max_age"], query["min_age"]
    if path.endswith("/reports/movements") and isinstance(query, dict):
        _movements_window(query)


def _movements_window(query: dict[str, Any]) -> None:
    """Two valid days may contradict each other (`to` before `from`, or a window past
    the report's limit): 400, as min_age > max_age. Keep generated windows sensible."""
    first, last = _day(query.get("from")), _day(query.get("to"))
    if first is None or last is None:
        return
    first, last = min(first, last), max(first, last)
    if (last - first).days >= MOVEMENTS_MAX_DAYS:
        last = first + timedelta(days=MOVEMENTS_MAX_DAYS - 1)
    query["from"], query["to"] = first.isoformat(), last.isoformat()
