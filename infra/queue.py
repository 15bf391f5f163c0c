"""The dramatiq broker on Redis, configured once per process before actors load."""

import dramatiq
from dramatiq.brokers.redis import RedisBroker


def configure_broker(redis_url: str, namespace: str) -> RedisBroker:
    broker = RedisBroker(url=redis_url, namespace=namespace)
    dramatiq.set_broker(broker)
    return broker
