"""The `retention:` section: how long the store keeps what, so it stops growing.

Every length left unset is computed from the config (`monitor.config.horizons`): the longest
window, budget period, volume baseline or report that still reads the data, plus a day. A
length set shorter than that is refused at `vigil config check`, naming the model and what
would go blind, because deleting what a window still reads changes its values silently.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from monitor.config.alerting import PositiveDuration


class RetentionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = True
    """`false`: the daemon deletes nothing and rolls nothing up (the store grows forever)."""
    hourly_for: PositiveDuration | None = None
    """Buckets (1h by default) older than this are merged into one bucket per day in the
    report's time zone; default: what the longest window or volume baseline reads, plus a day."""
    buckets_for: PositiveDuration = timedelta(days=400)
    """Bucket summaries (daily by then) older than this are deleted: a year of weekly reports."""
    history_for: PositiveDuration | None = None
    """SLO evaluations and metric points older than this are deleted; default: the longest
    budget period, burn window, SLO window or weekly report that reads them, plus a day."""
    every: PositiveDuration = timedelta(hours=1)
    """How often the daemon's retention job runs."""
    batch_rows: int = Field(default=500, ge=1, le=100_000)
    """Rows rolled up or deleted per transaction: a tick beside the job never waits long."""
    max_batches: int = Field(default=200, ge=1)
    """Transactions per run at most; what is left waits for the next run."""
    vacuum: bool = True
    """PostgreSQL: after a run that deleted rows, a plain `VACUUM` of those tables, so the
    store's files stop growing with the rows (`false`: leave it to autovacuum)."""
