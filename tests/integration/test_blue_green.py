"""Blue/green rebuild: the API keeps answering while new tables are built and swapped in."""

import subprocess
import sys
import threading
from typing import Any

import psycopg
from litestar.testing import TestClient

from commands.application import GymLedger
from tests.conftest import bearer, signup_and_login
from tests.integration.helpers import (
    gyms_table,
    head_position,
    index_definitions,
    replayed_gyms,
    wait_projected,
)


def test_rebuild_switches_over_without_failed_reads_or_repeated_mail(
    client: TestClient[Any], ledger: GymLedger, settings: Any, inbox: Any
) -> None:
    created, token = signup_and_login(client)
    owner = bearer(token)
    for i in range(5):
        body = {"first_name": f"Blue{i}", "last_name": "Green", "email": f"bg{i}@example.com"}
        assert client.post("/api/v1/customers", headers=owner, json=body).status_code == 201
    inbox.wait_for(created["email"])
    with psycopg.connect(settings.database_url) as conn:
        outbox_before = conn.execute("SELECT count(*) FROM mail_outbox").fetchone() or (0,)
    indexes = index_definitions(settings.database_url)
    statuses: list[int] = []
    stop = threading.Event()

    def keep_reading() -> None:
        while not stop.is_set():
            statuses.append(client.get("/api/v1/customers", headers=owner).status_code)
            statuses.append(client.get("/api/v1/gyms/me", headers=owner).status_code)

    reader = threading.Thread(target=keep_reading)
    reader.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "workers.cli", "projections", "rebuild", "--blue-green"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        # Writes keep flowing after the switch, into the new tables.
        late = {"first_name": "After", "last_name": "Switch", "email": "after@example.com"}
        assert client.post("/api/v1/customers", headers=owner, json=late).status_code == 201
    finally:
        stop.set()
        reader.join()
    assert result.returncode == 0, result.stderr
    assert "blue/green" in result.stdout
    assert index_definitions(settings.database_url) == indexes  # deferred ones are back
    assert len(statuses) > 10
    assert set(statuses) == {200}
    listed = client.get("/api/v1/customers", headers=owner).json()
    assert len(listed) == 6
    wait_projected(settings.database_url, head_position(settings.database_url))
    assert gyms_table(settings.database_url) == replayed_gyms(ledger, settings.database_url)
    with psycopg.connect(settings.database_url) as conn:
        outbox_after = conn.execute("SELECT count(*) FROM mail_outbox").fetchone() or (0,)
        assert outbox_after[0] == outbox_before[0] + 1  # only the new customer's welcome
        keys = conn.execute("SELECT count(*) - count(DISTINCT dedupe_key) FROM mail_outbox")
        assert keys.fetchone() == (0,)
    assert len(inbox.to(created["email"])) == 1
