"""The dramatiq entry module: `dramatiq workers.tasks` loads every actor and the scheduler.

This module IS the worker process's entry point (dramatiq's CLI imports it, then
consumes from the global broker), so reading the settings and bootstrapping at its
import is where a process starts, not configuration at import. No other module
imports it; tests declare the actors on a Runtime of their own (workers/actors.py).
"""

from infra.bootstrap import bootstrap
from infra.settings import load_settings
from workers.actors import add_worker_middleware, declare_actors

runtime = bootstrap(load_settings())  # also makes its broker dramatiq's global one
actors = declare_actors(runtime)
add_worker_middleware(runtime, actors)
broker = runtime.broker

__all__ = ["actors", "broker", "runtime"]
