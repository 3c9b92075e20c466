"""A stream's read position, kept in the store and handed to the source: plain data so the
store and the sources need not know each other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Watermark:
    """Read position: rows after (ts, row_id); a None row_id means "from ts on, inclusive"."""

    ts: datetime
    row_id: Any
    raw_ts: str | None = None
    """The source's own text for `ts` when it stores times as text (SQLite): the keyset must
    compare like with like, or a row whose time does not parse would be read again."""
