"""Mail delivery: sending one outbox row (the `send_mail` actor's body, see
workers/actors.py), and the relay that hands pending rows to the queue.

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


class MailDeliveryFailed(Exception):
    """Raised so dramatiq retries the message with exponential backoff."""


def deliver(
    conn: psycopg.Connection[tuple[object, ...]], mail_id: int, s: Settings, backend: MailBackend
) -> None:
    error: Exception | None = None
    with conn.transaction():
        row = mail_outbox.claim_for_sending(conn, mail_id)
        if row is None:
            return  # already sent, dead-lettered, or being sent by another worker
        try:
            backend.send(
                Mail(
                    key=row.dedupe_key, recipient=row.recipient, subject=row.subject, body=row.body
                )
            )
        except Exception as exc:  # any backend failure is retried, never lost
            error = exc
        else:
            mail_outbox.mark_sent(conn, mail_id)
            metrics.MAIL_SENT.inc()
            log.info("mail sent", extra={"mail_id": mail_id, "request_id": row.correlation_id})
            return
        final = row.attempts + 1 > s.mail_max_retries
        mail_outbox.record_failure(conn, mail_id, f"{type(error).__name__}: {error}", final)
    (metrics.MAIL_FAILED if final else metrics.MAIL_RETRIED).inc()
    log.warning("mail failed", extra={"mail_id": mail_id, "final": final})
    if not final:
        raise MailDeliveryFailed(f"mail {mail_id}") from error


def relay_outbox(
    conn: psycopg.Connection[tuple[object, ...]],
    send_mail: dramatiq.Actor[[int], None],
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
        for mail_id, request_id in pending:
            try:
                # The request id travels with the message, so the worker logs under it.
                send_mail.send_with_options(args=(mail_id,), request_id=request_id)
                sent += 1
            except Exception:  # Redis unavailable: the rest stay pending for next time
                log.warning("queue unavailable; mail stays pending", exc_info=True)
                mail_outbox.unmark_enqueued(conn, [m for m, _ in pending[sent:]])
                break
    return sent
