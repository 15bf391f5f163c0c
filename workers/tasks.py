"""The dramatiq entry module: `dramatiq workers.tasks` loads every actor and the scheduler."""

from workers import expiry, mail
from workers.mail import broker, settings

broker.add_middleware(expiry.SchedulerMiddleware(settings.expiry_interval_seconds))

__all__ = ["broker", "expiry", "mail"]
