"""An input's identity: a cheap key of its size and ends, and the SHA-256 of its bytes."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from teiten.errors import InputError

QUICK_BYTES = 1 << 20


def quick_key(path: Path, size: int) -> str:
    """SHA-256 of the size and the first and last MiB: equal for equal files, cheap."""
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(QUICK_BYTES))
        if size > QUICK_BYTES:
            f.seek(max(QUICK_BYTES, size - QUICK_BYTES))
            h.update(f.read(QUICK_BYTES))
    return h.hexdigest()


class Hasher(threading.Thread):
    """Computes a file's SHA-256 beside the ingest (hashlib releases the GIL)."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="teiten-hash", daemon=True)
        self.path, self.digest, self.error = path, "", ""

    def run(self) -> None:
        try:
            self.digest = content_hash(self.path)
        except OSError as e:
            self.error = e.strerror or str(e)

    def result(self) -> str:
        self.join()
        if self.error:
            raise InputError(f"cannot read {self.path}: {self.error}")
        return self.digest


def content_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (the catalog's identity of an input)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
