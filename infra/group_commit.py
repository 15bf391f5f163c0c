"""Group commit: the appends of concurrent commands in one process, in one statement.

Each append used to be its own call of `gymledger_append`: its own table lock, its
own WAL flush. Here a writer that finds no append in flight writes at once (no added
wait when the process is quiet); writers arriving meanwhile queue up, and when the
statement in flight returns, the first of them writes everything queued in one
statement. Under load, one lock and one flush serve many commands.

A duplicate (stream, version), or a guard's stream that moved on, fails the whole
statement: the group is then written again one writer at a time, so it fails only its
own command. Any other error is every member's, and each caller's retry
(eventsourcing's) applies as before.
"""

import threading
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError

# Rows of the append function, as the recorder builds them, and the guards of each
# append (a stream and the version its command decided on: infra/event_store.py).
Rows = Sequence[Any]
Guards = Sequence[tuple[Any, int]]
Write = Callable[[Rows, Guards], list[int]]


class _Append:
    def __init__(self, rows: Rows, guards: Guards) -> None:
        self.rows = rows
        self.guards = guards
        self.ids: list[int] = []
        self.error: BaseException | None = None
        self.lead = False  # set when this writer is to write the queued group
        self.done = threading.Event()

    def result(self) -> list[int]:
        if self.error is not None:
            raise self.error
        return self.ids


class GroupCommit:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Append] = []
        self._busy = False
        self.statements = 0  # appends made, for tests and the curious

    def append(self, rows: Rows, guards: Guards, write: Write) -> list[int]:
        """The positions of `rows`, written with whatever else is queued by `write`."""
        mine = _Append(rows, guards)
        with self._lock:
            self._queue.append(mine)
            wait = self._busy
            self._busy = True
        if wait:
            mine.done.wait()
            if not mine.lead:
                return mine.result()
        with self._lock:
            group, self._queue = self._queue, []
        try:
            self._write(group, write)
        finally:
            with self._lock:
                if self._queue:  # the next writer leads the ones queued meanwhile
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._busy = False
        return mine.result()

    def _write(self, group: list[_Append], write: Write) -> None:
        try:
            self.statements += 1
            rows = [row for member in group for row in member.rows]
            ids = write(rows, [guard for member in group for guard in member.guards])
        except IntegrityError as error:
            if len(group) == 1:
                self._finish(group[0], error=error)
                return
            for member in group:  # find the duplicate: it fails alone
                try:
                    self.statements += 1
                    self._finish(member, ids=write(member.rows, member.guards))
                except BaseException as one_error:
                    self._finish(member, error=one_error)
            return
        except BaseException as error:
            for member in group:
                self._finish(member, error=error)
            return
        start = 0
        for member in group:
            self._finish(member, ids=ids[start : start + len(member.rows)])
            start += len(member.rows)

    @staticmethod
    def _finish(
        member: _Append, ids: list[int] | None = None, error: BaseException | None = None
    ) -> None:
        member.ids, member.error = ids or [], error
        if not member.lead:
            member.done.set()
