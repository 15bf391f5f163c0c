"""The projector process: keeps the read model up to date with the event log.

Woken by the event store's NOTIFY (with a timeout as a safety net), it applies
new events in batches. A second thread relays new outbox mail to the queue, so
handing mail to Redis never delays the read model (and so read-your-writes).
One instance is active at a time (PostgreSQL advisory lock); others wait as hot
standbys, their relay idle too.
"""

import logging
import signal
import threading
import time

import psycopg
from psycopg import sql

from infra import metrics
from infra.bootstrap import bootstrap
from infra.db import EVENTS_CHANNEL
from infra.logs import configure_logging
from infra.settings import Settings, load_settings
from projections.read_model import READ_MODEL, read_model_projector
from workers.actors import declare_actors
from workers.mail import SendMail, relay_outbox

log = logging.getLogger("gymledger.projector")
_ACTIVE_LOCK = 0x70726A31  # advisory lock key of the active read-model projector
WAKE_UP_SECONDS = 1.0
# How often lost hand-overs are looked for (new mails are relayed after every batch).
STALE_MAIL_CHECK_SECONDS = 1.0


def _wait_for_leadership(
    conn: psycopg.Connection[tuple[object, ...]], stop: threading.Event
) -> bool:
    while not stop.is_set():
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_ACTIVE_LOCK,)).fetchone()
        if row and row[0]:
            return True
        stop.wait(WAKE_UP_SECONDS)
    return False


def run_projector(settings: Settings, send_mail: SendMail, stop: threading.Event) -> None:
    """Run until `stop` is set; reconnects every second while the database is down.
    New outbox mail is handed to the queue through `send_mail`.

    Any other failure (an event a projection cannot apply) is logged and the same
    batch retried with growing pauses: the projector neither dies, nor spins, nor
    skips the event. Parking such events is a separate, explicit operation.
    """
    projector = read_model_projector(
        settings.key_ring(), settings.projector_batch_size, settings.audit_witness_dir
    )
    relay = MailRelay(
        settings.database_url,
        send_mail,
        settings.mail_requeue_after_seconds,
        settings.mail_relay_linger_seconds,
    )
    relay.start()
    pause = 1.0
    try:
        while not stop.is_set():
            try:
                with (
                    psycopg.connect(settings.database_url, autocommit=True) as listener,
                    psycopg.connect(settings.database_url) as worker,
                ):
                    if not _wait_for_leadership(listener, stop):
                        return
                    listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_CHANNEL)))
                    projector.ensure_position_row(worker)
                    log.info("projector active", extra={"projection": READ_MODEL})
                    relay.active.set()
                    while not stop.is_set():
                        # When parked, this returns at once; the loop then just waits for
                        # `gymledger projections resume` (checked every WAKE_UP_SECONDS).
                        applied = projector.catch_up(worker)
                        pause = 1.0
                        metrics.PROJECTION_POSITION.labels(READ_MODEL).set(projector.position)
                        if applied:
                            log.debug("applied events", extra={"events": applied})
                            relay.wake_up.set()
                            # Events are coming in: let a few more arrive, so the next
                            # batch's fixed cost (its round trips, its signed checkpoint)
                            # is shared by more of them. The first event after a quiet
                            # spell is applied at once.
                            stop.wait(settings.projector_linger_seconds)
                        for _ in listener.notifies(timeout=WAKE_UP_SECONDS, stop_after=1):
                            pass
            except psycopg.OperationalError:
                # Reconnecting is cheap and read-your-writes waits on us: try every second.
                relay.active.clear()
                log.exception("database unavailable; reconnecting", extra={"pause": 1.0})
                stop.wait(1.0)
            except Exception:
                relay.active.clear()
                log.exception("projection failed; the batch is retried", extra={"pause": pause})
                stop.wait(pause)
                pause = min(pause * 2, 30.0)
    finally:
        relay.finish()


class MailRelay(threading.Thread):
    """Hands new outbox mail to the queue while this process is the active projector:
    `linger` seconds after a batch applied (so the mail of every batch applied
    meanwhile goes too), and every STALE_MAIL_CHECK_SECONDS for hand-overs whose
    message was lost.

    Why linger: under load the projector applies a batch every few milliseconds, a
    handful of events each. Handed over per batch, each queue message carried about
    six mails, and the worker's cost per message (dramatiq, Redis, a claim and a mark
    statement, an SMTP session) was most of its cost per mail (bench/README.md)."""

    def __init__(
        self,
        database_url: str,
        send_mail: SendMail,
        requeue_after: int,
        linger: float = 0.0,
    ) -> None:
        super().__init__(name="mail-relay", daemon=True)
        self.database_url = database_url
        self.send_mail = send_mail
        self.requeue_after = requeue_after
        self.linger = linger
        self.stop = threading.Event()
        self.active = threading.Event()  # set while this process holds the projector lock
        self.wake_up = threading.Event()

    def finish(self) -> None:
        """Stop after the hand-over in progress, if any, and wait for that."""
        self.active.clear()
        self.stop.set()
        self.wake_up.set()
        self.join()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.database_url) as conn:
                    self._relay(conn)
            except Exception:
                log.exception("mail relay failed; retrying")
                self.stop.wait(1.0)

    def _relay(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        next_stale_check = 0.0
        while not self.stop.is_set():
            if self.wake_up.wait(STALE_MAIL_CHECK_SECONDS) and self.linger:
                self.stop.wait(self.linger)  # a stop cuts it short
            self.wake_up.clear()
            if not self.active.is_set():
                continue
            stale_check_due = time.monotonic() >= next_stale_check
            relay_outbox(conn, self.send_mail, self.requeue_after, stale_too=stale_check_due)
            if stale_check_due:
                next_stale_check = time.monotonic() + STALE_MAIL_CHECK_SECONDS


def main() -> None:
    settings = load_settings()
    if settings.key_ring().signing is None:  # the API may run on public keys; we sign
        raise SystemExit("the projector signs the audit chain: AUDIT_SIGNING_KEY is required")
    configure_logging(settings.log_level)
    metrics.serve_if_configured()
    stop = threading.Event()
    # SIGTERM/SIGINT end the loop between batches: the current batch commits first.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # The relay enqueues through the send_mail actor (its name, queue and options),
    # declared on this process's broker; this process consumes nothing.
    runtime = bootstrap(settings)
    try:
        run_projector(settings, declare_actors(runtime).send_mail, stop)
    finally:
        runtime.close()
    log.info("projector stopped")


if __name__ == "__main__":
    main()
