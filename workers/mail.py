"""Mail delivery: sending a batch of outbox rows (the `send_mail` actor's body, see
workers/actors.py), and the relay that hands pending rows to the queue in batches.

The outbox row, not the queue message, is the source of truth: a message may be
lost (Redis down) or duplicated (redelivery) and the row still decides. The row
lock taken while sending stops two workers from sending the same mail at once.
"""

import logging

import dramatiq
import psycopg

from infra import metrics
from infra.mail import Mail, MailBackend
from infra.settings import Settings
from projections import mail_outbox

log = logging.getLogger("gymledger.mail")


# The send_mail actor: a batch of outbox ids, or one id (a message from before batches).
SendMail = dramatiq.Actor[[int | list[int]], None]


class MailDeliveryFailed(Exception):
    """Raised so dramatiq retries the message with exponential backoff."""


# Mails one queue message carries: sent over one SMTP session, claimed and marked with
# one statement each (bench/README.md, issue 14).
BATCH_SIZE = 50


def deliver(
    conn: psycopg.Connection[tuple[object, ...]], mail_id: int, s: Settings, backend: MailBackend
) -> None:
    deliver_batch(conn, [mail_id], s, backend)


def deliver_batch(
    conn: psycopg.Connection[tuple[object, ...]],
    mail_ids: list[int],
    s: Settings,
    backend: MailBackend,
) -> None:
    """Send the batch's pending mails, in one transaction holding their rows: each is
    marked sent, or has its failure recorded (`failed` once past MAIL_MAX_RETRIES).
    Raises MailDeliveryFailed after the commit while any may still be retried, so
    dramatiq retries the message with backoff; its sent mails are then skipped."""
    with conn.transaction():
        rows = mail_outbox.claim_batch(conn, mail_ids)
        if not rows:
            return  # already sent, dead-lettered, or sent by another worker meanwhile
        mails = [Mail(key=r.dedupe_key, recipient=r.recipient, subject=r.subject, body=r.body)
                 for r in rows]  # fmt: skip
        results = backend.send_many(mails)
        failures: list[tuple[int, str, bool]] = []
        sent: list[int] = []
        for row, error in zip(rows, results, strict=True):
            if error is None:
                sent.append(row.id)
                log.info("mail sent", extra={"mail_id": row.id, "request_id": row.correlation_id})
            else:
                final = row.attempts + 1 > s.mail_max_retries
                failures.append((row.id, f"{type(error).__name__}: {error}", final))
                log.warning("mail failed", extra={"mail_id": row.id, "final": final})
        mail_outbox.mark_all_sent(
            conn, [r.id for r, e in zip(rows, results, strict=True) if e is None]
        )
        mail_outbox.record_failures(conn, failures)
    metrics.MAIL_SENT.inc(len(sent))
    metrics.MAIL_FAILED.inc(sum(1 for *_, final in failures if final))
    retried = sum(1 for *_, final in failures if not final)
    metrics.MAIL_RETRIED.inc(retried)
    if retried:
        raise MailDeliveryFailed(f"{retried} of {len(rows)} mails to retry")


def relay_outbox(
    conn: psycopg.Connection[tuple[object, ...]],
    send_mail: SendMail,
    requeue_after_seconds: int,
    stale_too: bool = False,
) -> int:
    """Hand pending mails to the queue through `send_mail`; returns how many were enqueued.

    Marking and sending share one transaction: if this process dies in between, the
    marks roll back and the next relay hands the mails over again (a duplicate
    message is harmless, the outbox row decides). With `stale_too`, mails handed
    over more than `requeue_after_seconds` ago and still pending are handed over
    again: their message was lost.
    """
    sent = 0
    with conn.transaction():
        pending = mail_outbox.take_unenqueued(conn)
        if stale_too:
            pending += mail_outbox.take_unenqueued(conn, requeue_after_seconds)
        for start in range(0, len(pending), BATCH_SIZE):
            batch = pending[start : start + BATCH_SIZE]
            try:
                # The first mail's request id travels with the message, for the task's
                # log lines; the worker logs each mail under its own.
                ids = [mail_id for mail_id, _ in batch]
                send_mail.send_with_options(args=(ids,), request_id=batch[0][1])
                sent += len(batch)
            except Exception:  # Redis unavailable: the rest stay pending for next time
                log.warning("queue unavailable; mail stays pending", exc_info=True)
                mail_outbox.unmark_enqueued(conn, [m for m, _ in pending[start:]])
                break
    return sent
