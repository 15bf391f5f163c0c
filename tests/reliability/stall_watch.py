"""Live snapshots of a stall, taken while it happens (for the PostgreSQL restart soak).

A request that is still running after STALL_SECONDS is a stall. The first time one is
seen, the watch saves what only the live system can tell: pg_stat_activity and
pg_locks, the projector's position against the log's head, and a py-spy dump of every
process of the running system (the supervisor's descendants). Each snapshot goes to
its own file under `directory`, named after the moment it was taken.
"""

import contextlib
import shutil
import subprocess
import threading
import time
from pathlib import Path

import psutil
import psycopg

STALL_SECONDS = 2.5
QUERIES = {
    "activity": "SELECT pid, application_name, state, wait_event_type, wait_event,"
    " now() - query_start AS running_for, left(query, 200) FROM pg_stat_activity"
    " WHERE datname = current_database() ORDER BY pid",
    "locks": "SELECT l.pid, l.locktype, l.mode, l.granted, c.relname, l.objid"
    " FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation ORDER BY l.pid",
    "positions": "SELECT (SELECT max(notification_id) FROM gymledger_events) AS head,"
    " name, position, updated_at FROM projector_positions",
    "faults": "SELECT projection, position, failed_at, left(error, 300) FROM projection_faults",
}


class StallWatch(threading.Thread):
    def __init__(self, database_url: str, root_pid: int, directory: Path) -> None:
        super().__init__(name="stall-watch", daemon=True)
        self.database_url, self.root_pid, self.directory = database_url, root_pid, directory
        self.in_flight: dict[int, float] = {}  # request number -> monotonic start
        self.snapshots: list[Path] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            oldest = min(self.in_flight.values(), default=None)
            if oldest is not None and time.monotonic() - oldest > STALL_SECONDS:
                self._snapshot()
                self.stop.wait(2.0)  # one snapshot per stall, roughly

    def _snapshot(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"stall-{time.strftime('%H%M%S')}-{len(self.snapshots)}.txt"
        sections: list[str] = []
        try:
            with psycopg.connect(self.database_url, connect_timeout=2, autocommit=True) as conn:
                for name, query in QUERIES.items():
                    rows = conn.execute(query).fetchall()
                    sections.append(f"== {name}\n" + "\n".join(map(str, rows)))
        except psycopg.Error as error:
            sections.append(f"== database unreachable: {error}")
        sections += self._stacks()
        path.write_text("\n\n".join(sections) + "\n")
        self.snapshots.append(path)

    def _stacks(self) -> list[str]:
        py_spy = shutil.which("py-spy") or str(Path(__file__).parents[2] / ".venv/bin/py-spy")
        try:
            processes = [
                psutil.Process(self.root_pid),
                *psutil.Process(self.root_pid).children(True),
            ]
        except psutil.Error:
            return ["== processes gone"]
        stacks = []
        for process in processes:
            with contextlib.suppress(psutil.Error, OSError, subprocess.SubprocessError):
                dump = subprocess.run(
                    [py_spy, "dump", "--pid", str(process.pid)],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                )
                stacks.append(f"== py-spy {process.pid} {' '.join(process.cmdline())[:120]}\n"
                              f"{dump.stdout}{dump.stderr}")  # fmt: skip
        return stacks
