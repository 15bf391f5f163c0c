"""One API process of `gymledger run`: uvicorn serving the app on a socket the
supervisor opened and handed down (``python -m api.serve --fd N``).

The supervisor runs API_WORKERS of these side by side on the one listening socket,
instead of `uvicorn --workers`, so each is a child of its own that the supervisor
restarts with backoff, counts and takes down with it, like every other process.
While one is being replaced, new connections wait in the socket's backlog.
"""

import argparse
import os
import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.serve")
    parser.add_argument("--fd", type=int, required=True, help="an inherited listening socket")
    args = parser.parse_args(argv)
    listener = socket.socket(fileno=args.fd)  # family and type are read from the descriptor
    config = uvicorn.Config(
        "api.app:create_app",  # which loads and checks the settings
        factory=True,
        access_log=False,  # the app logs each request itself, with its request id
        timeout_graceful_shutdown=15,
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
    )
    server = uvicorn.Server(config)
    server.run(sockets=[listener])
    # As `uvicorn` exits: 3 when the app never started (bad settings, import error).
    return 0 if server.started else STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
