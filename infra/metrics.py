"""Prometheus metrics shared by every process.

With PROMETHEUS_MULTIPROC_DIR set (what `make run` and the image do), each process
writes its samples there and `render()` aggregates all of them, so counts stay
right with several API workers and the projector and queue worker beside them.
Without it, each process keeps its own registry (fine for tests and one process).
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "path", "status_code"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration",
    ["method", "path", "status_code"],
    buckets=_LATENCY,
)
HTTP_IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "HTTP requests being served",
    ["method", "path"],
    multiprocess_mode="livesum",
)
EVENTS_APPENDED = Counter("gymledger_events_appended", "Events appended", ["type"])
COMMAND_DURATION = Histogram(
    "gymledger_command_duration_seconds", "Command handling time", ["command"], buckets=_LATENCY
)
COMMAND_CONFLICTS = Counter(
    "gymledger_command_conflicts",
    "Commands refused by a race or a stale version",
    ["command", "reason"],
)
COMMAND_RETRIES = Counter(
    "gymledger_command_retries",
    "Commands without an expected version decided again after another writer won",
)
PROJECTION_POSITION = Gauge(
    "gymledger_projection_position",
    "Last applied log position",
    ["projection"],
    multiprocess_mode="max",
)
PROJECTION_LAG_EVENTS = Gauge(
    "gymledger_projection_lag_events",
    "Events not yet applied",
    ["projection"],
    multiprocess_mode="mostrecent",
)
PROJECTION_LAG_SECONDS = Gauge(
    "gymledger_projection_lag_seconds",
    "Age of the oldest unapplied event",
    ["projection"],
    multiprocess_mode="mostrecent",
)
PROJECTION_PARKED = Gauge(
    "gymledger_projection_parked",
    "1 while the projection is parked at an event it cannot apply",
    ["projection"],
    multiprocess_mode="mostrecent",
)
MAIL_SENT = Counter("gymledger_mail_sent", "Mails handed to the mail server")
MAIL_FAILED = Counter("gymledger_mail_failed", "Mails given up after every retry")
MAIL_RETRIED = Counter("gymledger_mail_retried", "Mail attempts that failed and will retry")
MAIL_PENDING = Gauge(
    "gymledger_mail_outbox_pending", "Mails waiting in the outbox", multiprocess_mode="mostrecent"
)
WITNESS_FAILURES = Counter(
    "gymledger_audit_witness_failures", "Signed checkpoints the witness could not be written for"
)
MAIL_DEAD_LETTERED = Gauge(
    "gymledger_mail_outbox_failed",
    "Mails given up after every retry and not requeued",
    multiprocess_mode="mostrecent",
)
# 1 while the check passes, 0 while it fails (api/health_checks.py names the checks);
# only "database" failing makes the API unready, the rest is "degraded".
HEALTH_CHECK = Gauge(
    "gymledger_health_check",
    "State of each /health check: 1 ok, 0 failing",
    ["check"],
    multiprocess_mode="mostrecent",
)
EXPIRY_RUNS = Counter("gymledger_expiry_runs", "Expiry job runs")
CUSTOMERS_EXPIRED = Counter("gymledger_customers_expired", "MembershipExpired events recorded")
MEMBERSHIP_TERMS_EXPIRED = Counter(
    "gymledger_membership_terms_expired", "MembershipTermExpired events recorded"
)
MEMBERSHIP_REMINDERS_QUEUED = Counter(
    "gymledger_membership_reminders_queued", "MembershipReminderQueued events recorded"
)
QUEUE_DEPTH = Gauge(
    "gymledger_queue_depth",
    "Messages waiting per dramatiq queue",
    ["queue"],
    multiprocess_mode="mostrecent",
)
TASKS = Counter("gymledger_tasks", "dramatiq task outcomes", ["actor", "outcome"])
PROCESS_RESTARTS = Counter(
    "gymledger_process_restarts",
    "Children of `gymledger run` started again after they exited unexpectedly",
    ["process"],
)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def render() -> bytes:
    """The exposition text of every process sharing the multiprocess directory."""
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


def serve_if_configured() -> None:
    """Projector and worker expose /metrics on METRICS_PORT when it is set (Kubernetes)."""
    port = os.environ.get("METRICS_PORT")
    if not port:
        return
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(int(port), registry=registry)
    else:
        start_http_server(int(port))
