"""Session-wide fixtures: the real servers, the projector, the mail worker, an API client."""

import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from litestar.testing import TestClient

from tests.smtp import Inbox
from tests.stack import ServerStack

if TYPE_CHECKING:
    from infra.bootstrap import Runtime
    from workers.actors import Actors

_stack = ServerStack()


def pytest_configure(config: pytest.Config) -> None:
    # Temporary directories of this session alone: under pytest's shared root
    # (/tmp/pytest-of-<user>) every session that starts takes group and other access
    # away from the root, and an embedded PostgreSQL of a session still running (it
    # runs as another system user when we are root) loses its data directory.
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="gymledger-pytest-")
    # Before collection, so the environment (DATABASE_URL, REDIS_URL, the SMTP port...)
    # is set before any fixture calls load_settings(). No module reads settings at
    # import any more (entry points and fixtures bootstrap); starting here simply
    # keeps one stack for the whole session.
    unit_only = config.args and all("tests/unit" in str(arg) for arg in config.args)
    if not unit_only:
        _stack.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _stack.server_url:
        _stack.stop()
    basetemp = Path(config.option.basetemp)
    if basetemp.name.startswith("gymledger-pytest-"):
        shutil.rmtree(basetemp, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> ServerStack:
    return _stack


@pytest.fixture(scope="session")
def inbox() -> Inbox:
    return _stack.smtp.inbox


@pytest.fixture(scope="session")
def settings() -> Any:
    from infra.settings import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def worker_runtime(settings: Any) -> Iterator["Runtime"]:
    """The session's Runtime on its Redis broker, shared by the projector's relay and
    the mail worker (actors are declared once per broker)."""
    from infra.bootstrap import bootstrap

    runtime = bootstrap(settings)
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def actors(worker_runtime: "Runtime") -> "Actors":
    from workers.actors import declare_actors

    return declare_actors(worker_runtime)


@pytest.fixture(scope="session")
def projector(settings: Any, actors: "Actors") -> Iterator[None]:
    """The real projector loop, in a thread of the test process."""
    from workers.projector import run_projector

    stop = threading.Event()
    thread = threading.Thread(
        target=run_projector, args=(settings, actors.send_mail, stop), daemon=True
    )
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def mail_worker(worker_runtime: "Runtime", actors: "Actors") -> Iterator[None]:
    """A real dramatiq worker consuming the session's Redis queue, with the worker
    process's middleware (the expiry scheduler among them)."""
    import dramatiq

    from workers.actors import add_worker_middleware

    add_worker_middleware(worker_runtime, actors)
    worker = dramatiq.Worker(worker_runtime.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield
    worker.stop()


@pytest.fixture(scope="session")
def client(settings: Any, projector: None, mail_worker: None) -> Iterator[TestClient[Any]]:
    from api.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def fresh_database(stack: ServerStack) -> Iterator[str]:
    """A migrated database of its own, for tests that need the whole log to themselves."""
    url = stack.create_database()
    yield url
    stack.drop_database(url)


@pytest.fixture(scope="session")
def ledger(settings: Any) -> Iterator[Any]:
    from commands.application import GymLedger

    app = GymLedger(settings.database_url, pool_size=2)
    yield app
    app.close()


def unique_email(prefix: str = "owner") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def signup_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Iron Temple",
        "email": unique_email(),
        "password": "correct horse",
        "monthly_fee_cents": 4900,
        "currency": "EUR",
    }
    body.update(overrides)
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signup_and_login(client: TestClient[Any], **overrides: Any) -> tuple[dict[str, Any], str]:
    body = signup_body(**overrides)
    created = client.post("/api/v1/auth/signup", json=body)
    assert created.status_code == 201, created.text
    login = client.post(
        "/api/v1/auth/login", data={"username": body["email"], "password": body["password"]}
    )
    assert login.status_code == 200, login.text
    return created.json(), login.json()["access_token"]
