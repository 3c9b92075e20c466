"""The typed shape of a Vigil config file; unknown keys are errors so typos never pass silently."""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.config.alerting import (
    Duration,
    InhibitRule,
    PositiveDuration,
    RoutingConfig,
    SilenceConfig,
    default_inhibit_rules,
)
from monitor.config.retention import RetentionConfig
from monitor.core.durations import format_duration, parse_duration
from monitor.core.objectives import Objective, parse_objective
from monitor.core.severity import Severity


def _to_objective(value: Any) -> Any:
    return parse_objective(str(value)) if isinstance(value, str | int | float) else value


ObjectiveField = Annotated[Objective, BeforeValidator(_to_objective)]
Task = Literal["binary_classification", "multiclass_classification", "regression"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceConfig(Strict):
    url: SecretStr
    chunk_size: int = Field(default=50_000, ge=100)
    spark_conf: dict[str, str] = Field(default_factory=dict)
    """For a `spark:` URL: session settings, e.g. the Delta or Iceberg catalog extensions."""
    statement_timeout: PositiveDuration | None = None
    """PostgreSQL: the server cancels any statement of this source that runs longer
    (`statement_timeout` on every connection). The tick's own deadline (`tick_timeout`) cancels
    from Vigil's side; this one also holds when Vigil cannot (a killed daemon, a partitioned
    network) and outside ticks (`vigil check`, backtests). Engines inside Vigil's process
    (SQLite, DuckDB) are interrupted by the tick deadline instead, so it is refused there."""

    @field_validator("statement_timeout")
    @classmethod
    def _timeout_on_postgresql(
        cls, value: timedelta | None, info: ValidationInfo
    ) -> timedelta | None:
        url = info.data.get("url")
        if value is None or url is None:
            return value
        scheme = url.get_secret_value().split(":", 1)[0].split("+", 1)[0].lower()
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(
                "statement_timeout is applied by PostgreSQL servers only; for this source, "
                "the model's tick_timeout cancels a statement that runs too long"
            )
        return value


class TableOrQuery(Strict):
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TableOrQuery:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


def _class_names(value: Any) -> Any:
    """Class names as the labels are compared: text, with `1` and `1.0` both read as "1"."""
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, column in value.items():
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        name = str(key) if isinstance(key, int) and not isinstance(key, bool) else key
        out[name] = "" if column is None else column  # `cat:` with no column: said below
    return out


class PredictionsSpec(TableOrQuery):
    id: str
    timestamp: str
    score: str | None = None
    scores: Annotated[dict[str, str], BeforeValidator(_class_names)] = Field(default_factory=dict)
    """A multiclass model's probability per class, `{class: column}`: what one-vs-rest and
    macro ROC AUC, log loss, Brier, per-class calibration and the estimates are computed from."""
    prediction: str | None = None
    features: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    model_version: str | None = None

    @model_validator(mode="after")
    def _model_version_is_a_segment(self) -> PredictionsSpec:
        """Quality per model version is the most asked-for segment: add it automatically."""
        if self.model_version and self.model_version not in self.segments:
            object.__setattr__(self, "segments", [*self.segments, self.model_version])
        return self

    @model_validator(mode="after")
    def _scores_name_classes(self) -> PredictionsSpec:
        """Each class once, named as its labels are, each with a column of its own."""
        owner: dict[str, str] = {}
        for cls, column in self.scores.items():
            problem = _score_problem(cls, column, owner)
            if problem:
                raise PydanticCustomError(
                    "scores", "{problem}", {"problem": problem, "at": ("scores", cls)}
                )
            owner[column] = cls
        if len(self.scores) == 1:
            problem = "give the score column of every class (at least two)"
            raise PydanticCustomError(
                "scores", "{problem}", {"problem": problem, "at": ("scores",)}
            )
        return self


def _score_problem(cls: str, column: str, owner: dict[str, str]) -> str | None:
    """Why `cls: column` cannot be a class's score (the pair key `class|1` needs no '|')."""
    if not cls.strip() or cls != cls.strip():
        return f"class name {cls!r} is empty or has spaces around it: write it as the labels do"
    if "|" in cls:
        return f"class name {cls!r} contains '|', which Vigil uses to pair a class with a flag"
    if not column.strip():
        return "give the column that holds this class's probability"
    if column in owner:
        return f"column {column!r} is already the score of class {owner[column]!r}"
    return None


class LabelsSpec(TableOrQuery):
    id: str
    timestamp: str
    label: str


class ReferenceSpec(Strict):
    between: tuple[date, date] | None = None
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReferenceSpec:
        given = [x for x in (self.between, self.table, self.query) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'between', 'table' or 'query'")
        if self.between and self.between[0] >= self.between[1]:
            raise ValueError("'between' must run from an earlier to a later date")
        return self


class BurnAlert(Strict):
    """Fire when the budget burns at least `burn` times too fast over both windows."""

    long: PositiveDuration
    short: PositiveDuration
    burn: float = Field(gt=0)
    severity: Severity

    @model_validator(mode="after")
    def _short_within_long(self) -> BurnAlert:
        if self.short >= self.long:
            raise PydanticCustomError(
                "burn_windows",
                "'short' must be shorter than 'long' (it confirms the long window still burns)",
                {"at": ("short",)},
            )
        return self


DEFAULT_BURN_ALERTS = (
    {"long": "1h", "short": "5m", "burn": 14.4, "severity": "page"},
    {"long": "6h", "short": "30m", "burn": 6, "severity": "page"},
    {"long": "3d", "short": "6h", "burn": 1, "severity": "ticket"},
)


def _count_or_duration(value: Any) -> Any:
    """`2` (evaluations) or `6h` (time); a number written as text is a count."""
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.isdigit() else parse_duration(text)
    return value


def _positive_hold(value: int | timedelta) -> int | timedelta:
    if isinstance(value, timedelta) and value <= timedelta(0):
        raise ValueError("must be a positive duration such as 6h, or a count such as 2")
    if isinstance(value, int) and value < 1:
        raise ValueError("must be at least 1 evaluation, or a duration such as 6h")
    return value


CountOrDuration = Annotated[
    int | timedelta, BeforeValidator(_count_or_duration), AfterValidator(_positive_hold)
]


class SLOConfig(Strict):
    metric: str
    objective: ObjectiveField
    window: PositiveDuration = timedelta(hours=24)
    severity: Severity = "ticket"
    features: Literal["all"] | list[str] | None = None
    for_: Duration = Field(default=timedelta(0), alias="for")
    min_samples: int = Field(default=30, ge=1)
    segment_by: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    target: float = Field(default=0.99, gt=0, lt=1)
    """Compliance target: the share of evaluations that must be good over `period`."""
    period: PositiveDuration = timedelta(days=28)
    burn_alerts: list[BurnAlert] | Literal["default"] | None = None
    """Multi-window burn-rate alerts on the error budget; `default` is the SRE workbook's."""
    resolve_after: CountOrDuration = 2
    """Hysteresis: good for this many evaluations in a row (`2`) or this long (`6h`)."""
    keep_firing_for: Duration | None = None
    """After a resolve, a breach within this long re-fires the same incident (same thread,
    same PagerDuty key) instead of opening a new one; default three windows, `0s` = off."""
    flap_changes: int = Field(default=4, ge=0)
    """An incident that resolves and re-fires this often within `flap_window` is flapping:
    its changes are recorded but not notified until it settles; `0` turns this off."""
    flap_window: PositiveDuration = timedelta(days=7)
    confidence: float | None = Field(default=None, ge=0.5, lt=1)
    """Confidence of the interval and sequential rules; the global `confidence` when unset."""
    name: str | None = None
    description: str | None = None
    runbook: str | None = None


class DriftConfig(Strict):
    """How a feature's drift is decided: corrected significance plus an effect-size floor
    (PSI, or for numeric features the Wasserstein distance in reference standard deviations)."""

    alpha: float = Field(default=0.05, gt=0, lt=1)
    correction: Literal["bh", "bonferroni"] = "bh"
    min_psi: float = Field(default=0.05, ge=0)
    min_wasserstein: float = Field(default=0.075, ge=0)
    noise_level: float = Field(default=0.001, ge=0, lt=0.5)
    """Each floor rises to the effect size sampling noise alone exceeds in this share of
    windows of the window's size, so small windows do not page on noise; 0 keeps the fixed
    floors."""


class BusinessMetric(Strict):
    """A number the model's owner cares about (approval rate, losses prevented), shown in the
    weekly report with its daily trend; read from the model's source, not from Vigil's store."""

    name: str
    description: str | None = None
    query: str | None = None
    """SQL on the model's source returning rows of (time, value); may use `:start` and `:end`."""
    column: str | None = None
    """A column of the predictions, aggregated per day."""
    aggregate: Literal["mean", "sum", "count", "min", "max"] = "mean"
    format: Literal["number", "percent"] = "number"
    unit: str = ""
    higher_is_better: bool | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> BusinessMetric:
        if (self.query is None) == (self.column is None):
            raise ValueError("give exactly one of 'query' or 'column'")
        return self


class ModelConfig(Strict):
    source: str
    task: Task
    schedule: PositiveDuration = timedelta(minutes=5)
    bucket: Duration = timedelta(hours=1)
    settle_delay: Duration = timedelta(0)
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    team: str | None = None
    predictions: PredictionsSpec
    labels: LabelsSpec | None = None
    reference: ReferenceSpec
    slos: list[SLOConfig] = Field(default_factory=list)
    drift: DriftConfig = DriftConfig()
    blind_after: PositiveDuration = timedelta(minutes=15)
    """Ticks failing without a break for this long raise a `monitoring_blind` incident."""
    duplicate_horizon: Duration = timedelta(days=1)
    """A prediction id seen again within this long (by prediction time) is a duplicate,
    across ticks; each id is kept this long in the store (about 40 bytes a row)."""
    label_horizon: Duration | None = None
    """How long a label whose prediction is not in the source yet is held and retried before
    it counts as `unknown_label_id` (default: the longest SLO window)."""
    business_metrics: list[BusinessMetric] = Field(default_factory=list)
    tick_timeout: PositiveDuration | None = None
    """A tick running longer is stopped (its source statement cancelled) and counts as a
    failed tick, towards `blind_after`; default `server.tick_timeout`."""
    backfill: PositiveDuration | None = None
    """How far back the first tick reads the source (in chunks, each committed with its
    watermark); default: the longest SLO window, or 4 weeks when `volume.ratio` is watched."""
    backfill_chunks: int = Field(default=100, ge=1)
    """While a stream is more than a day behind (a first start, a long outage), a tick reads at
    most this many source chunks of it and judges nothing until it has caught up."""
    compute: Literal["pull", "pushdown"] = "pull"
    """`pushdown`: prediction summaries are computed by the source's engine (one GROUP BY
    bucket query per tick) and only they cross the wire; `pull` reads the rows."""

    @model_validator(mode="after")
    def _scores_are_multiclass(self) -> ModelConfig:
        if self.predictions.scores and self.task != "multiclass_classification":
            raise PydanticCustomError(
                "scores",
                "per-class 'scores' are for a multiclass_classification model; "
                "a binary model's probability is 'score'",
                {"at": ("predictions", "scores")},
            )
        return self

    @model_validator(mode="after")
    def _bucket_fits(self) -> ModelConfig:
        # `at` in the error context is the field inside this model the problem belongs to;
        # the loader appends it to the location so the message names that field and its line.
        if self.bucket < timedelta(minutes=1) or timedelta(days=1) % self.bucket:
            raise PydanticCustomError(
                "bucket_size",
                "'bucket' must divide one day evenly and be at least 1m",
                {"at": ("bucket",)},
            )
        for i, slo in enumerate(self.slos):
            if slo.window % self.bucket:
                raise PydanticCustomError(
                    "window_not_multiple",
                    "SLO window {window} is not a multiple of bucket {bucket}",
                    {
                        "window": format_duration(slo.window),
                        "bucket": format_duration(self.bucket),
                        "at": ("slos", i, "window"),
                    },
                )
        return self


class SlackReceiver(Strict):
    """`token`: the Web API (threads, head edits); `webhook_url`: an incoming webhook (one
    message per event: Slack returns no ts to thread on); neither: payloads go to `outfile`."""

    channel: str = ""
    token: SecretStr | None = None
    base_url: str | None = None
    outfile: str | None = None
    webhook_url: SecretStr | None = None

    @model_validator(mode="after")
    def _channel_unless_webhook(self) -> SlackReceiver:
        if not self.channel and self.webhook_url is None:
            raise PydanticCustomError("missing", "required key is missing", {"at": ("channel",)})
        return self


def _routing_key_length(value: SecretStr) -> SecretStr:
    # Checked here so a typo is a config error (exit 2), not a page PagerDuty drops at 3 am.
    if len(value.get_secret_value().strip()) != 32:
        raise ValueError("must be the 32-character integration key of an Events API v2 integration")
    return value


class PagerDutyReceiver(Strict):
    routing_key: Annotated[SecretStr, AfterValidator(_routing_key_length)]
    base_url: str = "https://events.pagerduty.com"
    page_severity: Literal["critical", "error"] = "critical"
    source: str | None = None
    """PagerDuty's `source` (the affected system); the model's name when unset."""
    client_url: str | None = None


class WebhookReceiver(Strict):
    """A JSON POST signed with HMAC-SHA256 (docs/webhook-schema.md); the URL may hold a token."""

    url: SecretStr
    secret: SecretStr


class BugQueueReceiver(Strict):
    """Ticket incidents, and follow-ups of resolved pages, as bugs in Vigil's own store."""

    follow_up_pages: bool = True


class GitHubReceiver(Strict):
    """Files each bug-queue bug as a GitHub issue too (token from the environment)."""

    repo: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]
    token: SecretStr
    base_url: str = "https://api.github.com"
    labels: list[str] = Field(default_factory=lambda: ["vigil"])
    follow_up_pages: bool = True


class ReceiverConfig(Strict):
    slack: SlackReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None
    webhook: WebhookReceiver | None = None
    bug_queue: BugQueueReceiver | None = None
    github: GitHubReceiver | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReceiverConfig:
        kinds = [name for name, value in self if value is not None]
        if len(kinds) != 1:
            raise ValueError("a receiver has exactly one integration (for example 'slack')")
        return self

    @property
    def kind(self) -> str:
        return next(name for name, value in self if value is not None)


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKLY = re.compile(r"^\s*([a-z]{3})[a-z]*\s+(\d{1,2}):(\d{2})\s*$")


def parse_weekly(text: str) -> tuple[str, int, int]:
    """`mon 09:00` as (day, hour, minute); raises ValueError naming the accepted form."""
    match = _WEEKLY.match(text.lower())
    if match and match.group(1) in _WEEKDAYS:
        day, hour, minute = match.group(1), int(match.group(2)), int(match.group(3))
        if hour < 24 and minute < 60:
            return day, hour, minute
    raise ValueError(f"not a weekly time: {text!r} (write a weekday and a time, e.g. 'mon 09:00')")


class ReportEmail(Strict):
    """SMTP delivery of the weekly report; put the password in the environment (`${...}`)."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["starttls", "ssl", "none"] = "starttls"
    timeout: float = Field(default=30, gt=0)


class ReportConfig(Strict):
    weekly: str = "mon 09:00"
    timezone: str = "UTC"
    slack: str | None = None
    slack_token: SecretStr | None = None
    """Defaults to the token of the first Slack receiver that has one."""
    slack_base_url: str | None = None
    out_dir: str = "reports/"
    email: ReportEmail | None = None
    paper: Literal["A4", "Letter"] = "A4"
    """The printed page size of the report's HTML and PDF."""

    @field_validator("paper", mode="before")
    @classmethod
    def _paper(cls, value: object) -> object:
        """`a4`, `letter`, `LETTER` all mean what they say; CSS reads either case."""
        if isinstance(value, str):
            return {"a4": "A4", "letter": "Letter"}.get(value.strip().lower(), value)
        return value

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, value: str) -> str:
        parse_weekly(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (write e.g. Europe/Berlin)") from None
        return value


class ServerConfig(Strict):
    """The `vigil run` process: its HTTP endpoints and how it schedules and stops."""

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)
    outbox_interval: PositiveDuration = timedelta(seconds=10)
    """How often the outbox sender runs; it also runs right after a tick changed incidents."""
    outbox_backoff: Duration = timedelta(seconds=10)
    """The wait after a receiver's first failure, doubled (with jitter) after each further
    one, up to 30 minutes; a receiver's Retry-After is honoured when longer."""
    shutdown_timeout: Duration = timedelta(seconds=20)
    """On SIGTERM, how long running ticks may finish before they are abandoned (state stays
    consistent: every chunk commits with its watermark)."""
    web_config_file: str | None = None
    """TLS and basic auth in Prometheus' web-config format (`monitor.service.webconfig`);
    relative to the config file's folder. `vigil run --web-config-file` overrides it."""
    idle_timeout: Duration = timedelta(seconds=30)
    """An HTTP connection that sends no complete request for this long is closed."""
    max_connections: int = Field(default=512, ge=1, le=100_000)
    unready_after_failures: int = Field(default=3, ge=1)
    """`/readyz` answers 503 while a model's last ticks failed this many times in a row."""
    workers: int | None = Field(default=None, ge=1, le=256)
    """Threads that run ticks; default `default_workers()`: min(32, 2 x cores + 4). A model
    runs at most one tick at a time, so a slow one holds one thread, never more."""
    tick_timeout: PositiveDuration | None = None
    """Every model's `tick_timeout` unless it sets its own; default: the model's schedule,
    at least one minute (a tick longer than its interval would overrun the next one)."""
    stagger: Duration = timedelta(minutes=1)
    """First ticks are spread evenly over min(stagger, schedule) instead of all at once."""
    rebalance_interval: PositiveDuration = timedelta(seconds=15)
    """Replicas on a PostgreSQL store look for joined or departed replicas this often; a
    departed replica's models are ticked elsewhere within about this long."""
    public_url: str | None = None
    """The address people open this daemon at (`https://vigil.example.internal`): alerts
    link their incident's evidence page, `<public_url>/incidents/<id>`. Unset: no link (an
    address Vigil guessed from its bind address would not open from a phone)."""

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")) or len(value) <= len("https://"):
            raise ValueError(
                f"{value!r} is not an http(s) address (write e.g. https://vigil.example)"
            )
        return value


class VigilConfig(Strict):
    store: SecretStr = SecretStr("sqlite:///vigil.db")
    sources: dict[str, SourceConfig]
    models: dict[str, ModelConfig]
    routing: RoutingConfig = RoutingConfig()
    receivers: dict[str, ReceiverConfig] = Field(default_factory=dict)
    inhibit_rules: list[InhibitRule] = Field(default_factory=default_inhibit_rules)
    silences: list[SilenceConfig] = Field(default_factory=list)
    report: ReportConfig = ReportConfig()
    server: ServerConfig = ServerConfig()
    runbook_base_url: str | None = None
    confidence: float = Field(default=0.95, ge=0.5, lt=1)
    """Default confidence of every SLO's interval and sequential rules."""
    outbox_max_age: PositiveDuration = timedelta(days=2)
    retention: RetentionConfig = RetentionConfig()


DEFAULT_TICK_TIMEOUT_FLOOR = timedelta(minutes=1)


def default_workers() -> int:
    """Enough threads for ticks that mostly wait on their sources, bounded for small boxes."""
    return min(32, 2 * (os.cpu_count() or 1) + 4)


def worker_count(server: ServerConfig) -> int:
    return server.workers if server.workers is not None else default_workers()


def tick_timeout(config: VigilConfig, model: str) -> timedelta:
    """How long `model`'s tick may run: its own setting, the server's, else its schedule but
    at least a minute (a first tick also fits the reference; a short test schedule must not
    turn it into a timeout)."""
    spec = config.models[model]
    return (
        spec.tick_timeout
        or config.server.tick_timeout
        or max(spec.schedule, DEFAULT_TICK_TIMEOUT_FLOOR)
    )


def keep_firing_for(slo: SLOConfig) -> timedelta:
    """The re-fire cool-down: configured, or three times the SLO's window (a problem that
    comes back within three windows of its recovery is the same problem: a category seen
    once a day then stays one incident a month, measured in bench/incidents_bench.py)."""
    return slo.keep_firing_for if slo.keep_firing_for is not None else 3 * slo.window


def burn_alerts(slo: SLOConfig) -> list[BurnAlert]:
    if slo.burn_alerts == "default":
        return [BurnAlert.model_validate(rule) for rule in DEFAULT_BURN_ALERTS]
    return list(slo.burn_alerts or [])
