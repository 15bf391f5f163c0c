"""dramatiq middleware: one request id from HTTP request to worker, task metrics, and
worker processes that die with dramatiq's main process."""

import contextlib
import contextvars
import multiprocessing
import signal
from typing import Any

import dramatiq

from infra import metrics
from infra.lifeline import die_with_parent
from infra.logs import configure_logging, request_id_var


class DiesWithMainProcess(dramatiq.Middleware):
    """`dramatiq` forks its worker processes; if its main process is SIGKILLed they would
    go on consuming, as orphans nobody stops or restarts. Linux kills them with it."""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        parent = multiprocessing.parent_process()  # None when not started by dramatiq's CLI
        if parent is not None and parent.pid is not None:
            die_with_parent(signal.SIGKILL, parent.pid)


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
