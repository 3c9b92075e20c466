"""The stored root-cause table (`detectors.root_cause.table`) as text cells, for every place
that shows it: the incident evidence page and `vigil incidents show`. A row written by an
older version that lacks a key, or holds None, shows a dash rather than failing the page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class CauseRow:
    """One slice of the attribution table, as text cells."""

    slice: str
    metric: str
    share_before: str
    share_now: str
    metric_before: str
    metric_now: str
    contribution: str
    mix: str
    performance: str


def cause_rows(table: list[dict[str, Any]], missing: str = "—") -> list[CauseRow]:
    """Shares as whole percents, metrics to three decimals, mix and performance signed to
    four; `missing` stands for a value the row does not have."""

    def cell(value: Any, spec: str) -> str:
        return format(value, spec) if isinstance(value, int | float) else missing

    return [
        CauseRow(
            slice=f"{row.get('dimension', '?')} = {row.get('slice', '?')}",
            metric=str(row.get("metric", "")),
            share_before=cell(row.get("traffic_before"), ".0%"),
            share_now=cell(row.get("traffic_now"), ".0%"),
            metric_before=cell(row.get("metric_before"), ".3f"),
            metric_now=cell(row.get("metric_now"), ".3f"),
            contribution=cell(row.get("share_of_change"), ".0%"),
            mix=cell(row.get("mix"), "+.4f"),
            performance=cell(row.get("performance"), "+.4f"),
        )
        for row in table
        if isinstance(row, dict)
    ]
