"""Vectorised decoding of raw records into columnar packet batches."""

from __future__ import annotations

from teiten.decode.batch import PacketBatch, empty_columns
from teiten.decode.decoder import decode

__all__ = ["PacketBatch", "decode", "empty_columns"]
