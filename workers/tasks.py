"""The dramatiq entry module: `dramatiq workers.tasks` loads every actor and the scheduler."""

from dramatiq.middleware import CurrentMessage

from workers import expiry, mail
from workers.mail import broker, settings
from workers.task_middleware import DiesWithMainProcess, TaskObservability

broker.add_middleware(DiesWithMainProcess())
broker.add_middleware(CurrentMessage())  # the expiry job's causation id
broker.add_middleware(expiry.SchedulerMiddleware(settings.expiry_interval_seconds))
# Last, so the Retries middleware has already decided whether a failure is final.
broker.add_middleware(TaskObservability(settings.log_level))

__all__ = ["broker", "expiry", "mail"]
