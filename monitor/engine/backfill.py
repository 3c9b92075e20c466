"""History on first start: how much of it one tick may read, and the progress it logs.

A new model's first tick starts reading at `backfill_depth` (the longest window, or the four
weeks a `volume.ratio` baseline needs), and a model back from a long outage is as far
behind. While a stream is more than `CATCH_UP` behind, a tick reads at most the model's
`backfill_chunks` chunks of it, each committed with its watermark (a crash resumes at the
last one), logs where it got to, and judges nothing: windows over a half-read past would
page on-call for an outage that was only Vigil still reading. The first tick that catches
up judges the present, with the whole history behind it; the past itself is never judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from monitor.config.models import ModelConfig
from monitor.core.watermark import Watermark

CATCH_UP = timedelta(days=1)
"""A stream further behind than this is read in bounded ticks, without judging."""
log = structlog.get_logger("vigil.backfill")


@dataclass
class ChunkBudget:
    """The chunks one tick may still read from one stream while it is catching up."""

    model: str
    stream: str
    limit: int
    until: datetime
    read: int = 0

    def spent(self, mark: Watermark, rows: int) -> bool:
        """Count one stored chunk and log the progress; True when the tick must stop reading."""
        self.read += 1
        log.info(
            "backfill",
            model=self.model,
            stream=self.stream,
            reached=mark.ts.isoformat(),
            behind_s=round(max(0.0, (self.until - mark.ts).total_seconds())),
            rows=rows,
            chunk=self.read,
            chunks_per_tick=self.limit,
        )
        return self.read >= self.limit


def chunk_budget(
    model: ModelConfig, name: str, stream: str, mark: Watermark, now: datetime
) -> ChunkBudget | None:
    """A budget when the stream is more than `CATCH_UP` behind, else None (read it all)."""
    until = now - model.settle_delay
    if mark.ts >= until - CATCH_UP:
        return None
    return ChunkBudget(name, stream, model.backfill_chunks, until)
