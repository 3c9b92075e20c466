"""How far back each kind of stored data is still read, computed from the config.

Retention (`monitor.engine.retention`) never deletes or coarsens anything younger than these
lengths, and a first tick backfills the fine buckets they need (`backfill_depth`). Each length
carries why it is needed, so a refused `retention:` setting names what it would break.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from monitor.config.models import ModelConfig, SLOConfig, VigilConfig, burn_alerts
from monitor.core.durations import format_duration

VOLUME_WEEKS = 4
"""`volume.ratio` compares the last bucket with the same bucket in each of the past 4 weeks."""
REPORT_READS = timedelta(days=22)
"""The weekly report reads the last complete week and the one before it: at most 21 days
back, plus up to a day of time-zone offset."""
MARGIN = timedelta(days=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Need:
    """A length of history and what reads it."""

    length: timedelta
    why: str

    def __str__(self) -> str:
        return f"{format_duration(self.length)} for {self.why}"


def _name(slo: SLOConfig) -> str:
    return slo.name or f"{slo.metric} over {format_duration(slo.window)}"


def _longest(needs: list[Need]) -> Need:
    return max(needs, key=lambda need: need.length)


def volume_depth(model: ModelConfig) -> timedelta:
    """The oldest bucket `volume.ratio` reads: the last complete one, 4 weeks back."""
    return VOLUME_WEEKS * timedelta(days=7) + 2 * model.bucket


def fine_need(model: ModelConfig) -> Need:
    """How long buckets must keep the model's own width: windows and the volume baseline
    read bucket by bucket, and a day-wide bucket inside them would blur their edges."""
    needs = [Need(model.bucket, "one bucket")]
    needs += [Need(slo.window + model.bucket, f"SLO {_name(slo)!r}") for slo in model.slos]
    if any(slo.metric == "volume.ratio" for slo in model.slos):
        needs.append(Need(volume_depth(model), "the volume.ratio baseline (4 weeks)"))
    return _longest(needs)


def bucket_need(model: ModelConfig) -> Need:
    """How long bucket summaries must exist at all (daily ones serve the weekly report)."""
    return _longest([fine_need(model), Need(REPORT_READS, "the weekly report")])


def history_need(model: ModelConfig) -> Need:
    """How long SLO evaluations (and metric points) are read: budgets over their period and
    burn windows, SLO windows, and the weekly report's two weeks."""
    needs = [Need(REPORT_READS, "the weekly report")]
    for slo in model.slos:
        needs.append(Need(slo.period, f"the budget period of SLO {_name(slo)!r}"))
        needs.append(Need(slo.window, f"SLO {_name(slo)!r}"))
        needs += [
            Need(rule.long, f"a burn alert of SLO {_name(slo)!r}") for rule in burn_alerts(slo)
        ]
    return _longest(needs)


def backfill_depth(model: ModelConfig) -> timedelta:
    """How far back a model's first tick reads: as configured, else what its longest window
    or its volume baseline needs (so `volume.ratio` is not blind for four weeks)."""
    if model.backfill is not None:
        return model.backfill
    needs = [model.bucket, *(slo.window for slo in model.slos)]
    if any(slo.metric == "volume.ratio" for slo in model.slos):
        needs.append(volume_depth(model))
    return max(needs)


@dataclass(frozen=True)
class Retention:
    """The lengths retention applies, every one resolved (configured or computed)."""

    fine_for: timedelta
    buckets_for: timedelta
    history_for: timedelta


def _most(config: VigilConfig, of: str) -> timedelta:
    """The longest need of one kind over every model, plus a day's margin."""
    finders = {"fine": fine_need, "buckets": bucket_need, "history": history_need}
    lengths = [finders[of](m).length for m in config.models.values()]
    return max(lengths, default=REPORT_READS) + MARGIN


def resolve_retention(config: VigilConfig) -> Retention:
    settings = config.retention
    fine = settings.hourly_for or _most(config, "fine")
    return Retention(
        fine_for=fine,
        buckets_for=max(settings.buckets_for, fine),
        history_for=settings.history_for or _most(config, "history"),
    )


def retention_problems(config: VigilConfig) -> list[tuple[str, str]]:
    """(field, message) for each `retention:` length set shorter than something reads."""
    settings = config.retention
    checks = (
        ("hourly_for", settings.hourly_for, fine_need),
        ("buckets_for", settings.buckets_for, bucket_need),
        ("history_for", settings.history_for, history_need),
    )
    out: list[tuple[str, str]] = []
    for field, length, finder in checks:
        if length is None:
            continue
        for name, model in config.models.items():
            need = finder(model)
            if length < need.length:
                out.append(
                    (
                        field,
                        f"{format_duration(length)} is shorter than model {name!r} reads: "
                        f"{need}; set at least {format_duration(need.length)} or leave it unset",
                    )
                )
                break
    if settings.hourly_for is not None and settings.buckets_for < settings.hourly_for:
        out.append(("buckets_for", "must be at least 'hourly_for' (fine buckets are buckets)"))
    return out
