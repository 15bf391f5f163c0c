"""`make image-smoke`: run every role from the built image and drive it end to end.

Where `podman run` is refused (as on machines whose runtime cannot set rlimits), each
role is started from the image's own filesystem instead: `podman image mount`, then
`chroot --userspec=10001:10001`, with the image's environment, in a private mount
namespace (a tmpfs for /tmp, /proc and /dev bound in) that vanishes with the script.
Against real PostgreSQL and Redis (DATABASE_URL / REDIS_URL, default the machine's), in a
database of its own: migrations, the API (the image's CMD), the projector and the
worker; then /health/ready, a signup, a customer, its welcome mail, and the image's
HEALTHCHECK command. Not part of CI: it needs root and a built image.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from infra.signing import generate_private_pem

IMAGE = os.environ.get("IMAGE_TAG", "gymledger:0.1.0")
API = "http://127.0.0.1:8000"  # the image's CMD and HEALTHCHECK both use port 8000


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout


def image_config() -> dict[str, Any]:
    """The image's Config, with the HEALTHCHECK (podman keeps it beside Config)."""
    inspected = json.loads(podman("image", "inspect", IMAGE))[0]
    config: dict[str, Any] = inspected["Config"]
    return {**config, "Healthcheck": inspected.get("Healthcheck") or {}}


def prepare_root(root: str) -> None:
    """The image's filesystem is mounted read-only: writable /tmp, and /proc and /dev."""
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", f"{root}/tmp"], check=True)
    os.makedirs(f"{root}/tmp/metrics", mode=0o700)
    os.chown(f"{root}/tmp/metrics", 10001, 10001)
    subprocess.run(["mount", "-t", "proc", "proc", f"{root}/proc"], check=True)
    subprocess.run(["mount", "--rbind", "/dev", f"{root}/dev"], check=True)


def role(root: str, env: dict[str, str], *command: str) -> list[str]:
    variables = [f"{k}={v}" for k, v in env.items()]
    return ["chroot", "--userspec=10001:10001", root, "/usr/bin/env", "-i", "-C", "/app",
            *variables, *command]  # fmt: skip


def wait_for(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if found := check():
                return found
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"FAILED: {what} within {timeout:.0f} s")


def drive_api() -> None:
    wait_for("/health/ready answers 200", lambda: httpx.get(f"{API}/health/ready").is_success)
    print("ok  /health/ready 200")
    email = f"smoke-{uuid.uuid4().hex[:8]}@example.com"
    password = "violet kettle harbour 42"
    body = {"name": "Smoke Gym", "email": email, "password": password,
            "monthly_fee_cents": 1000, "currency": "EUR"}  # fmt: skip
    httpx.post(f"{API}/api/v1/auth/signup", json=body, timeout=10).raise_for_status()
    login = httpx.post(f"{API}/api/v1/auth/login", data={"username": email, "password": password})
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    customer = {"first_name": "Smoke", "last_name": "Test", "email": f"c-{email}"}
    created = httpx.post(f"{API}/api/v1/customers", json=customer, headers=auth, timeout=10)
    created.raise_for_status()
    shown = httpx.get(f"{API}/api/v1/customers/{created.json()['id']}", headers=auth)
    assert shown.json()["email"] == customer["email"], shown.text
    print("ok  signup, login, customer created and read back")
    mails = lambda: [m for m in httpx.get(f"{API}/api/v1/mails", headers=auth).json()  # noqa: E731
                     if m["status"] == "sent"]  # fmt: skip
    wait_for("the welcome mail is sent", mails)
    print("ok  welcome mail sent by the worker")


def main() -> int:
    if os.environ.get("SMOKE_IN_NAMESPACE") != "1":  # mounts of our own, gone when we exit
        env = {**os.environ, "SMOKE_IN_NAMESPACE": "1"}
        unshare = ["unshare", "--mount", "--propagation", "private",
                   sys.executable, "-m", "infra.deploy.image_smoke"]  # fmt: skip
        return subprocess.run(unshare, env=env, check=False).returncode
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    database = f"gymledger_smoke_{uuid.uuid4().hex[:8]}"
    config = image_config()
    with ExitStack() as cleanup:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        cleanup.callback(drop_database, server, database)
        root = podman("image", "mount", IMAGE).strip()
        cleanup.callback(podman, "image", "umount", IMAGE)
        prepare_root(root)
        env = dict(v.split("=", 1) for v in config["Env"])
        env |= {
            "DATABASE_URL": make_conninfo(server, dbname=database),
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "QUEUE_NAMESPACE": database,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "AUDIT_SIGNING_KEY": generate_private_pem(),
            "MAIL_BACKEND": "console",
            "LOG_LEVEL": "WARNING",
        }
        subprocess.run(role(root, env, "gymledger", "migrate"), check=True)
        print("ok  migrations applied as uid 10001")
        roles = {
            "api": config["Cmd"],
            "projector": ["python", "-m", "workers.projector"],
            "worker": ["dramatiq", "workers.tasks", "--processes", "1", "--threads", "2"],
        }
        for name, command in roles.items():
            process = subprocess.Popen(role(root, env, *command))
            cleanup.callback(stop, name, process)
        drive_api()
        check = config.get("Healthcheck", {}).get("Test") or []
        if check[:1] != ["CMD"]:
            raise SystemExit(f"FAILED: the image has no HEALTHCHECK command ({check})")
        subprocess.run(role(root, env, *check[1:]), check=True)
        print("ok  the image's HEALTHCHECK command passes")
    print("image smoke test passed")
    return 0


def stop(name: str, process: "subprocess.Popen[bytes]") -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop in 20 s; killing it", file=sys.stderr)
        process.kill()
        process.wait()


def drop_database(server: str, database: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(database)))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
