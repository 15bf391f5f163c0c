"""`make bench`: GymLedger's throughput, latency, catch-up speed, lag and memory.

Starts the system the way `make run` does (embedded servers unless DATABASE_URL /
REDIS_URL are set), in a fresh database, and writes bench/results/<time>.json and
.md. Scales and durations come from BENCH_SCALES and BENCH_SECONDS.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from statistics import quantiles
from typing import Any

import httpx
import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commands.application import GymLedger
from commands.context import CommandContext
from commands.customers import RegisterCustomer, register_customer
from commands.gyms import ProfileChanges, load_gym
from domain import gym
from domain.customer import NewCustomer
from infra.clock import SystemClock
from infra.db import PROJECTED_CHANNEL
from infra.embedded import services
from infra.signing import generate_private_pem, key_ring
from projections.read_model import read_model_projector
from projections.rebuild import rebuild_in_place
from tests.factories import synthetic_log
from workers.expiry import expire_due_memberships
from workers.setup import migrate

SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
WARM_UP_SECONDS = 5
SCALES = [int(s) for s in os.environ.get("BENCH_SCALES", "10000,100000,1000000").split(",")]
QUERY_GYM_SIZE = int(os.environ.get("BENCH_QUERY_CUSTOMERS", "100000"))
LONG_HISTORY = int(os.environ.get("BENCH_LONG_HISTORY", "10000"))
CHECK_IN_MEMBERS = int(os.environ.get("BENCH_CHECK_IN_MEMBERS", "500"))
CONNECTIONS = 16
STEADY_RATE = 200  # commands/s sustained: issue 14 asks for lag p99 ≤ 20 ms at this rate
AUDIT_KEY = generate_private_pem()  # a throwaway signing key for the run


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# --- database set-up -------------------------------------------------------------------


def fresh_database(server_url: str) -> str:
    name = f"gymledger_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(server_url, dbname=name)
    migrate(url)
    return url


def drop_database(server_url: str, url: str) -> None:
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


def catch_up(url: str) -> tuple[int, float]:
    projector = read_model_projector(key_ring(AUDIT_KEY), batch_size=1000)
    with psycopg.connect(url) as conn:
        projector.ensure_position_row(conn)
        started = time.perf_counter()
        events = projector.catch_up(conn)
        return events, time.perf_counter() - started


def expire_lapsed(url: str) -> None:
    """What the worker's expiry runs would do over the first minutes, done first."""
    ledger = GymLedger(url, pool_size=2)
    try:
        while expire_due_memberships(ledger, url, SystemClock()):
            catch_up(url)  # the work list is read from the projected customers
    finally:
        ledger.close()


def rebuild(url: str) -> tuple[int, float]:
    projector = read_model_projector(key_ring(AUDIT_KEY), batch_size=1000)
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        events = rebuild_in_place(conn, projector)  # what `gymledger projections rebuild` does
        return events, time.perf_counter() - started


# --- the running system ----------------------------------------------------------------


class System:
    """`gymledger run` against the bench database, with peak memory sampling."""

    def __init__(self, url: str, redis_url: str, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.jwt_secret = secrets.token_urlsafe(48)
        # The mail sink is part of the rig, like wrk: in memory where the machine has a
        # tmpfs. On the root ext4 disk the worker's kernel time per mail file varied six
        # times over between phases of one run (directory growth, journaling).
        # Each mail takes a page there: a run's 40,000 mails about 160 MiB.
        shm = Path("/dev/shm")
        memory = "/dev/shm" if shm.is_dir() and shutil.disk_usage(shm).free > 2**30 else "/tmp"
        sink = Path(os.environ.get("BENCH_MAIL_ROOT", memory))
        self.mail_dir = sink / f"gymledger-bench-mail-{port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "PORT": str(port),
            "LOG_LEVEL": "WARNING",
            "MAIL_BACKEND": "directory",
            "MAIL_DIR": str(self.mail_dir),
            "QUEUE_NAMESPACE": f"bench-{port}",
            "AUDIT_SIGNING_KEY": AUDIT_KEY,
            "JWT_SECRET": self.jwt_secret,
            # `make run`'s default (issue 14 measures the defaults; two until 2026-12-01).
            "API_WORKERS": os.environ.get("BENCH_API_WORKERS", "1"),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "run"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def token_for(self, gym_id: uuid.UUID) -> str:
        """A token for a synthetic gym (no password): signed the way the API signs."""
        from api.auth import owner_token

        now = datetime.now(UTC)
        return owner_token(gym_id, self.jwt_secret, 3600, generation=0, now=now)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health/ready", timeout=1).status_code == 200:
                    self._sampler.start()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("system did not become ready")

    def _role(self, p: psutil.Process) -> str:
        cmd = " ".join(p.cmdline())
        if "api.serve" in cmd or "uvicorn" in cmd or ("multiprocessing" in cmd and "spawn" in cmd):
            return "api"
        if "workers.projector" in cmd:
            return "projector"
        if "dramatiq" in cmd or "workers.tasks" in cmd:
            return "worker"
        return "other"

    def _sample(self) -> None:
        root = psutil.Process(self.proc.pid)
        while not self._stop.wait(0.25):
            per_process: dict[str, int] = {}
            try:
                for child in root.children(recursive=True):
                    role = self._role(child)
                    rss = child.memory_info().rss
                    per_process[role] = max(per_process.get(role, 0), rss)
            except psutil.Error:
                continue
            for role, rss in per_process.items():
                self.peak[role] = max(self.peak.get(role, 0), rss)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far, per role, PostgreSQL's and Redis's server processes included.

        Per request, this is steadier than throughput on a shared machine whose
        speed drifts between runs (pgbench moved from 4,000 to 8,600 tps here).
        Beside each of our roles, "<role> main thread": its processes' main threads
        (the API's event loop, the projector's batches), so that the rest is the
        other threads' (the API's write side, the mail relay, the worker's threads)."""
        used: dict[str, float] = {}
        servers = {"postgres": "postgres", "redis-server": "redis"}  # embedded ones too
        children = psutil.Process(self.proc.pid).children(True)
        processes = [(self._role(p), p) for p in children if p.name() not in servers]
        processes += [(servers[p.name()], p) for p in psutil.process_iter() if p.name() in servers]
        for role, process in processes:
            try:
                times = process.cpu_times()
                main = None if role in servers.values() else _main_thread_seconds(process.pid)
            except (psutil.Error, OSError):
                continue  # ended meanwhile
            used[role] = used.get(role, 0.0) + times.user + times.system
            if main is not None:
                used[f"{role} main thread"] = used.get(f"{role} main thread", 0.0) + main
        return used

    def measure(self, script: str, env: dict[str, str]) -> dict[str, Any]:
        """wrk against the system, plus the CPU milliseconds each role spent per request."""
        before = self.cpu_seconds()
        result = wrk(script, self.base, env)
        after = self.cpu_seconds()
        requests = max(1.0, result["requests_per_second"] * SECONDS)
        per_request = {
            role: round((after[role] - before.get(role, 0.0)) * 1000 / requests, 2)
            for role in sorted(after)
        }
        result["cpu_ms_per_request"] = {k: v for k, v in per_request.items() if "thread" not in k}
        result["cpu_ms_per_request_main_thread"] = {
            k.removesuffix(" main thread"): v for k, v in per_request.items() if "thread" in k
        }
        return result

    def stop(self) -> None:
        self._stop.set()
        self.proc.send_signal(2)
        self.proc.wait(60)
        shutil.rmtree(self.mail_dir, ignore_errors=True)


def _main_thread_seconds(pid: int) -> float:
    """utime + stime of a process's main thread, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lengthen_history(url: str, gym_id: uuid.UUID, events: int) -> None:
    """`events` profile updates of one gym, appended 500 to a statement: the history a
    customer command must not pay for (issue 14: cost flat in the gym's history)."""
    ledger = GymLedger(url, pool_size=1)
    try:
        state = load_gym(ledger, gym_id)
        for start in range(0, events, 500):
            batch = []
            for i in range(start, min(start + 500, events)):
                change = ProfileChanges(description=f"history {i}")
                updated = gym.update_profile(state, change, CommandContext.system().stamp())
                assert updated is not None
                state = gym.evolve(state, updated)
                batch.append(updated)
            ledger.append(*batch)
    finally:
        ledger.close()


def front_desk_members(base: str, token: str, members: int) -> list[str]:
    """A gym's members, each holding a monthly membership that started today: what
    the check-in load scans (a third of them frozen or cancelled would only change
    the reason recorded, not the work)."""
    headers = {"Authorization": f"Bearer {token}"}
    today = datetime.now(UTC).date().isoformat()
    with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=30) as client:
        plan = {"name": "Monthly", "price_cents": 3900, "currency": "EUR", "term": {"months": 1}}
        plan_id = client.post("/plans", json=plan).raise_for_status().json()["id"]
        ids = []
        for i in range(members):
            member = {
                "first_name": "Desk",
                "last_name": f"Member{i}",
                "email": f"d{i}@bench.example",
            }
            customer_id = client.post("/customers", json=member).raise_for_status().json()["id"]
            sale = {"plan_id": plan_id, "starts_on": today}
            client.post(f"/customers/{customer_id}/memberships", json=sale).raise_for_status()
            ids.append(customer_id)
    return ids


def owner_token(base: str) -> tuple[str, str]:
    email = f"owner-{uuid.uuid4().hex[:8]}@bench.example"
    body = {
        "name": "Bench",
        "email": email,
        "password": "bench pass phrase",
        "monthly_fee_cents": 0,
        "currency": "EUR",
    }
    created = httpx.post(f"{base}/api/v1/auth/signup", json=body, timeout=10).json()
    form = {"username": email, "password": "bench pass phrase"}
    token = httpx.post(f"{base}/api/v1/auth/login", data=form, timeout=10).json()["access_token"]
    return created["id"], token


def wrk(script: str, url: str, env: dict[str, str], seconds: int = SECONDS) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            str(CONNECTIONS),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / script),
            url,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not found:
            return float("nan")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_second": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def lag_at_rate(url: str, rate: int, seconds: int) -> dict[str, Any]:
    """Commands straight to the write side at a fixed rate; time until visible."""
    ledger = GymLedger(url, pool_size=16)
    gym_id = synthetic_log(url, 1)
    time.sleep(2)  # projector picks the gym up
    committed: dict[int, float] = {}
    visible: dict[int, float] = {}
    done = threading.Event()

    def listen() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(PROJECTED_CHANNEL)))
            while not done.is_set():
                for note in conn.notifies(timeout=0.5):
                    visible.setdefault(int(note.payload), time.perf_counter())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)

    def send(i: int) -> None:
        details = NewCustomer(first_name="Lag", last_name=f"L{i}", email=f"lag{i}@b.example")
        command = RegisterCustomer(gym_id=gym_id, details=details)
        result = register_customer(ledger, command, CommandContext.system())
        committed[result.position] = time.perf_counter()

    # Open loop: submissions follow the clock, not the responses (at most 32 in flight).
    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        for i in range(rate * seconds):
            time.sleep(max(0.0, started + i / rate - time.perf_counter()))
            pool.submit(send, i)
    achieved = len(committed) / (time.perf_counter() - started)
    time.sleep(2)
    done.set()
    listener.join()
    ledger.close()
    notified = sorted(visible.items())
    lags: list[float] = []
    for position, at in committed.items():
        seen = next((t for p, t in notified if p >= position), None)
        if seen is not None:
            lags.append(max(0.0, seen - at) * 1000)
    cuts = quantiles(lags, n=100) if len(lags) > 1 else [float("nan")] * 99
    return {
        "target_rate": rate,
        "achieved_rate": round(achieved, 1),
        "commands": len(committed),
        "p50_ms": round(cuts[49], 2),
        "p99_ms": round(cuts[98], 2),
    }


def pg_ceiling(url: str) -> float:
    """pgbench: single-row INSERT transactions per second at the same concurrency."""
    info = conninfo_to_dict(url)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_ceiling (id bigserial, v text)")
    script = ROOT / "bench" / "results" / "ceiling.sql"
    script.write_text("INSERT INTO bench_ceiling (v) VALUES ('x');\n")
    env = {
        **os.environ,
        "PGHOST": str(info.get("host", "")),
        "PGPORT": str(info.get("port", "")),
        "PGUSER": str(info.get("user", "postgres")),
        "PGDATABASE": str(info["dbname"]),
    }
    out = subprocess.run(
        ["pgbench", "-n", "-c", str(CONNECTIONS), "-j", "2", "-T", "10", "-f", str(script)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()
    found = re.search(r"tps = ([\d.]+)", out)
    return float(found.group(1)) if found else 0.0


def main() -> None:
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(),
        "cpus": os.cpu_count(),
        "seconds": SECONDS,
        "connections": CONNECTIONS,
    }
    with ExitStack() as stack:
        urls = stack.enter_context(services(ROOT / ".data" / "bench"))
        results["servers"] = "embedded" if urls.embedded else "given by DATABASE_URL/REDIS_URL"
        url = fresh_database(urls.database_url)
        stack.callback(drop_database, urls.database_url, url)

        log(f"catch-up scaling: {SCALES}")
        scaling = []
        for scale in SCALES:
            scratch = fresh_database(urls.database_url)
            try:
                synthetic_log(scratch, scale)
                events, first = catch_up(scratch)
                again, second = rebuild(scratch)
                scaling.append(
                    {
                        "events": events,
                        "first_catch_up_s": round(first, 2),
                        "first_events_per_s": round(events / first),
                        "rebuild_s": round(second, 2),
                        "rebuild_events_per_s": round(again / second),
                    }
                )
                log(f"  {scaling[-1]}")
            finally:
                drop_database(urls.database_url, scratch)
        results["projector_catch_up"] = scaling

        log(f"large gym: {QUERY_GYM_SIZE} customers")
        big_gym = synthetic_log(url, QUERY_GYM_SIZE)
        # Project the import before the system starts, record the expiry of its lapsed
        # memberships (about a fifth), and treat its welcome mails as sent: the worker's
        # expiry runs (1,000 a minute) and an 80,000-mail backlog would otherwise be
        # what the command phase measures.
        catch_up(url)
        expire_lapsed(url)
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE mail_outbox SET status = 'sent', sent_at = now()")
        with psycopg.connect(url, autocommit=True) as conn:
            # What autovacuum does soon after such a load (the import's rows, its
            # mails marked sent): left to it, it may run during a measured phase and
            # count as that phase's PostgreSQL CPU per command.
            conn.execute("VACUUM ANALYZE")
        system = System(url, urls.redis_url, 18000 + os.getpid() % 1000)
        stack.callback(system.stop)
        system.wait_ready()
        wait_projected(url)
        # Not measured: the first seconds after a start, where every process still
        # imports, connects and fills its caches (the worker's CPU per command was
        # three times its steady figure in them).
        _, warm_up_token = owner_token(system.base)
        customers = {"BENCH_TOKEN": warm_up_token, "BENCH_PATH": "/api/v1/customers"}
        wrk("post_customers.lua", system.base, customers, seconds=WARM_UP_SECONDS)
        wait_projected(url)
        wait_mail_sent(url)  # or the warm-up's welcome mails go out during the measure
        _, token = owner_token(system.base)
        log("commands over HTTP")
        results["commands"] = system.measure(
            "post_customers.lua", {"BENCH_TOKEN": token, "BENCH_PATH": "/api/v1/customers"}
        )
        log(f"  {results['commands']}")

        log(f"commands on a gym with {LONG_HISTORY} events of its own")
        long_gym, long_token = owner_token(system.base)
        lengthen_history(url, uuid.UUID(long_gym), LONG_HISTORY)
        wait_projected(url)
        wait_mail_sent(url)
        results["commands_long_history"] = system.measure(
            "post_customers.lua", {"BENCH_TOKEN": long_token, "BENCH_PATH": "/api/v1/customers"}
        )
        log(f"  {results['commands_long_history']}")

        log("queries over HTTP on the large gym")
        wait_projected(url)  # the command run above left a backlog of welcome mails and rows
        with psycopg.connect(url, autocommit=True) as conn:
            ids = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM customers WHERE gym_id = %s LIMIT 5000", (big_gym,)
                )
            ]
            conn.execute("VACUUM ANALYZE customers")  # what autovacuum does soon after a load
        big_token = system.token_for(big_gym)
        ids_file = ROOT / "bench" / "results" / "ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        results["queries"] = system.measure(
            "queries.lua",
            {
                "BENCH_TOKEN": big_token,
                "BENCH_PATH": "/api/v1/customers",
                "BENCH_IDS": str(ids_file),
            },
        )
        ids_file.unlink()
        log(f"  {results['queries']}")

        log(f"check-ins at the front desk of a gym with {CHECK_IN_MEMBERS} members")
        _, desk_token = owner_token(system.base)
        members_file = ROOT / "bench" / "results" / "members.txt"
        members_file.write_text(
            "\n".join(front_desk_members(system.base, desk_token, CHECK_IN_MEMBERS)) + "\n"
        )
        wait_projected(url)
        results["check_ins"] = system.measure(
            "check_ins.lua",
            {
                "BENCH_TOKEN": desk_token,
                "BENCH_PATH": "/api/v1/check-ins",
                "BENCH_IDS": str(members_file),
            },
        )
        members_file.unlink()
        log(f"  {results['check_ins']}")

        # At a rate the machine sustains, lag is the pipeline's own delay (NOTIFY, batch,
        # commit); where the writers saturate it, lag is mostly queueing. Each starts on
        # a quiet system: mail queued by the earlier phases would compete for the CPU.
        for key, rate in (("lag_steady", STEADY_RATE), ("lag", 1000)):
            wait_mail_sent(url)
            log(f"projection lag at {rate} commands/s")
            results[key] = lag_at_rate(url, rate, 5)
            log(f"  {results[key]}")
        results["peak_rss_mb"] = {k: round(v / 2**20, 1) for k, v in system.peak.items()}
        log("PostgreSQL ceiling (pgbench)")
        results["pg_insert_tps"] = pg_ceiling(url)
        results["commands_vs_ceiling"] = round(
            results["commands"]["requests_per_second"] / results["pg_insert_tps"], 3
        )
        log(f"  {results['pg_insert_tps']} tps")
    write(results)


def wait_projected(url: str, timeout: float = 1800) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT (SELECT max(notification_id) FROM gymledger_events),"
                " (SELECT position FROM projector_positions WHERE name = 'read_model')"
            ).fetchone()
            if row and row[1] is not None and row[1] >= row[0]:
                return
            time.sleep(1)
    raise RuntimeError("projector did not catch up")


def wait_mail_sent(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM mail_outbox WHERE status = 'pending'")
            if row.fetchone() == (0,):
                return
            time.sleep(0.5)
    log(f"  mail still pending after {timeout} s; measuring anyway")


def write(results: dict[str, Any]) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "results"
    (out / f"{stamp}.json").write_text(json.dumps(results, indent=2))
    c, q, lag = results["commands"], results["queries"], results["lag"]
    long, desk = results["commands_long_history"], results["check_ins"]

    def total(r: dict[str, Any]) -> str:
        return f"{sum(r['cpu_ms_per_request'].values()):.2f} ms"

    def http(r: dict[str, Any]) -> str:
        return (
            f"{r['requests_per_second']:.0f}/s (p50 {r['p50_ms']:.1f} ms,"
            f" p99 {r['p99_ms']:.1f} ms, errors {r['errors']})"
        )

    lines = [
        f"# GymLedger bench {results['date']} ({results['cpus']} cores, {results['servers']})",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
        f"| commands, {CONNECTIONS} connections | {http(c)} | ≥ 1000/s, p99 ≤ 50 ms |",
        f"| queries at {QUERY_GYM_SIZE} customers | {http(q)} | ≥ 2000/s, p99 ≤ 25 ms |",
        f"| CPU ms per command, by process | {c['cpu_ms_per_request']} (all: {total(c)}) |"
        " ≤ 2.0 ms |",
        f"| … of it in each role's main threads | {c['cpu_ms_per_request_main_thread']} | |",
        f"| CPU ms per query, by process | {q['cpu_ms_per_request']} (all: {total(q)}) |"
        " ≤ 1.5 ms |",
        f"| … of it in each role's main threads | {q['cpu_ms_per_request_main_thread']} | |",
        f"| check-ins, {CONNECTIONS} connections, {CHECK_IN_MEMBERS} members | {http(desk)};"
        f" CPU {desk['cpu_ms_per_request']} (all: {total(desk)}) | |",
        f"| commands on a gym with {LONG_HISTORY} events | {http(long)};"
        f" CPU {long['cpu_ms_per_request']} (all: {total(long)}) | as on a new gym |",
        *[
            f"| catch-up, {s['events']} events | first {s['first_events_per_s']}/s,"
            f" rebuild {s['rebuild_events_per_s']}/s ({s['rebuild_s']} s) | rebuild ≥ 30000/s |"
            for s in results["projector_catch_up"]
        ],
        *[
            f"| lag at {r['achieved_rate']} cmd/s (offered {r['target_rate']})"
            f" | p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms | p99 ≤ 20 ms at 200/s |"
            for r in (lag, results["lag_steady"])
        ],
        f"| peak RSS (MB) | {results['peak_rss_mb']} | API ≤ 100 |",
        f"| PostgreSQL INSERT tps | {results['pg_insert_tps']:.0f}"
        f" (commands = {results['commands_vs_ceiling']:.0%} of it) | |",
    ]
    (out / f"{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
