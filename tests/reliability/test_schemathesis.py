"""The published contract holds: schemathesis' own CLI, every check, every phase.

`schemathesis run <base>/schema/openapi.json --checks all` against `gymledger run`
(API, projector and mail worker) on a database of its own, as an owner (the bearer
token goes in through schemathesis.toml's auth section). The coverage, fuzzing and
stateful phases run; schemathesis.toml and tests/reliability/schemathesis_hooks.py
hold the few exceptions (docs/RELIABILITY.md says why). Short in `make test`, long
with RELIABILITY=full (`make fuzz`); FUZZ_SEED picks the seed (full runs draw one).
"""

import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_make_run import ROOT, owner_over_http, start_system, stop_system, wait_healthy
from tests.reliability.scale import FULL, size
from tests.smtp import free_port
from tests.stack import ServerStack

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
SHORT_SEED = 20261201


@pytest.fixture(scope="module")
def running(stack: ServerStack) -> Iterator[dict[str, Any]]:
    url = stack.create_database()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "QUEUE_NAMESPACE": f"schemathesis-{port}",
        # The fuzzer logs in and verifies far more often than a person: limits aside.
        "LOGIN_ATTEMPTS_PER_EMAIL": "1000000",
        "AUDIT_VERIFICATIONS_PER_MINUTE": "1000000",
    }
    proc = start_system(env, ROOT)
    base = f"http://127.0.0.1:{port}"
    system: dict[str, Any] = {"base": base}
    try:
        wait_healthy(base, proc)
        system["token"] = owner_over_http(base)
        me = httpx.get(
            f"{base}/api/v1/gyms/me", headers={"Authorization": f"Bearer {system['token']}"}
        )
        system["gym_id"] = me.json()["id"]
        yield system
    finally:
        code, output = stop_system(proc)
        stack.drop_database(url)
        assert code == 0, output[-2000:]
        assert "unhandled error" not in output, output[-4000:]


def test_schemathesis_finds_no_failure(running: dict[str, Any]) -> None:
    seed = int(os.environ.get("FUZZ_SEED") or (random.randrange(2**32) if FULL else SHORT_SEED))
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{running['base']}/schema/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(size(3, 200)),
        "--seed",
        str(seed),
        "--generation-database",
        "none",
        "--no-color",
    ]
    env = {
        **os.environ,
        "GYMLEDGER_FUZZ_TOKEN": running["token"],
        "GYMLEDGER_FUZZ_GYM_ID": running["gym_id"],
    }
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=size(300, 3600)
    )
    output = done.stdout + done.stderr
    summary = output[output.rfind("\n", 0, output.rfind("= SUMMARY =")) + 1 :]
    print(f"\nschemathesis seed {seed}:\n{summary}")
    assert done.returncode == 0, output[-12000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated is not None, summary
    assert int(generated.group(1)) > 500, summary
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, summary
