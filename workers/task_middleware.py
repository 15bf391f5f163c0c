"""dramatiq middleware: one request id from HTTP request to worker, and task metrics."""

import contextlib
import contextvars
from typing import Any

import dramatiq

from infra import metrics
from infra.logs import configure_logging, request_id_var


class TaskObservability(dramatiq.Middleware):
    """Sets the sender's request id while a message is processed, counts outcomes,
    and serves /metrics on METRICS_PORT from one worker process."""

    def __init__(self, log_level: str) -> None:
        self.log_level = log_level
        self._tokens: dict[str, contextvars.Token[str | None]] = {}

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        configure_logging(self.log_level)  # JSON lines, like the API and the projector
        # With several worker processes only the first binds the port; the
        # multiprocess registry lets that one report for all of them.
        with contextlib.suppress(OSError):
            metrics.serve_if_configured()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        request_id = message.options.get("request_id")
        self._tokens[message.message_id] = request_id_var.set(request_id)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        outcome = "success" if exception is None else "failed" if message.failed else "retry"
        metrics.TASKS.labels(message.actor_name, outcome).inc()
        token = self._tokens.pop(message.message_id, None)
        if token is not None:
            request_id_var.reset(token)

    after_skip_message = after_process_message
