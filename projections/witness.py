"""The external witness: every signed checkpoint, appended outside the database.

One append-only NDJSON file per gym (`<dir>/<gym id>.ndjson`). Someone who can rewrite
the database, even delete a gym's newest events with their chain rows and checkpoints,
cannot reach these lines; `gymledger audit verify --witness DIR` then finds a witnessed
checkpoint that the database no longer extends. The directory can live on another
volume, a write-once bucket mount or a log shipper's input; a webhook or an object
store can later take the same lines.
"""

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from uuid import UUID

import msgspec

from projections.checkpoints import Checkpoint


class Witness:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._encode = msgspec.json.Encoder().encode

    def append(self, checkpoints: Iterable[Checkpoint]) -> None:
        by_gym: dict[UUID, list[bytes]] = {}
        for checkpoint in checkpoints:
            by_gym.setdefault(checkpoint.gym_id, []).append(self._encode(checkpoint) + b"\n")
        for gym_id, lines in by_gym.items():
            path = self.directory / f"{gym_id}.ndjson"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"".join(lines))
                os.fsync(fd)
            finally:
                os.close(fd)


def witnessed(directory: str | Path) -> Iterator[Checkpoint]:
    """Every checkpoint in a witness directory, file by file, in the order written."""
    decode = msgspec.json.Decoder(Checkpoint).decode
    for path in sorted(Path(directory).glob("*.ndjson")):
        with path.open("rb") as lines:
            for line in lines:
                if line.strip():
                    yield decode(line)
