"""Entry points of the long-running processes: projector, queue worker, supervisor, CLI."""
