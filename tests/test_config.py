"""The configuration: the shipped examples load, every kind of mistake gets a one-screen answer
naming its line and field with exit code 2 (checked through the real `vigil` command), and
secrets from the environment never show up in errors or reprs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from detectors.registry import metric_names
from monitor.config import ConfigError, VigilConfig, load_config, parse_config
from monitor.core.durations import parse_duration
from monitor.core.objectives import parse_objective
from monitor.core.redact import MASK, Redactor

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BAD_EXAMPLES = sorted((EXAMPLES / "bad").glob("*.yaml"))
VIGIL = Path(sys.executable).parent / "vigil"

TOKEN = "xoxb-super-secret-123"
PASSWORD = "hunter2-pw"
STORE_URL = f"postgresql+psycopg://vigil:{PASSWORD}@db.internal:5432/vigil"
SHOP_URL = "postgresql+psycopg://vigil_ro:shop-db-pw-456@shop.internal:5432/shop"
PROD_ENV = {"VIGIL_STORE_URL": STORE_URL, "SHOP_DB_URL": SHOP_URL, "SLACK_BOT_TOKEN": TOKEN}

# A valid config the tests below break one piece at a time.
BASE = """\
store: sqlite:///vigil.db
sources:
  shop_db: {url: "sqlite:///shop.db"}
models:
  fraud-detector:
    source: shop_db
    task: binary_classification
    schedule: 5m
    predictions: {table: predictions, id: request_id, timestamp: predicted_at, score: score}
    labels: {table: chargebacks, id: request_id, timestamp: labeled_at, label: is_fraud}
    reference: {between: ["2026-10-01", "2026-10-31"]}
    slos:
      - metric: accuracy
        window: 24h
        objective: ">= 0.85"
        severity: page
routing:
  default: [ml-oncall]
receivers:
  ml-oncall: {slack: {channel: "#ml-oncall", outfile: slack-payloads.jsonl}}
"""


def vigil(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `vigil` console script with none of the example variables set
    unless `env` sets them."""
    environ = {k: v for k, v in os.environ.items() if k not in PROD_ENV}
    environ.update(env or {})
    return subprocess.run(
        [str(VIGIL), *map(str, args)],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def edited(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once"
    return text.replace(old, new)


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    """The rendered problem lines (without the heading) for a config text."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml", environ or {})
    return caught.value.render().splitlines()[1:]


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    """Exit code 2, a message on stderr, no traceback, and short enough for one screen."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert result.stderr.strip()
    assert "Traceback" not in output
    assert len(result.stderr.splitlines()) < 40


# --- the good examples -------------------------------------------------------------------------


def test_postgres_example_loads_with_its_variables_set() -> None:
    """examples/postgres.yaml is valid once its three variables are set, and the values it
    reads from the environment end up in the typed config."""
    config = load_config(EXAMPLES / "postgres.yaml", environ=PROD_ENV)
    assert config.store.get_secret_value() == STORE_URL
    assert config.sources["shop_db"].url.get_secret_value() == SHOP_URL
    model = config.models["fraud-detector"]
    assert model.source == "shop_db"
    assert model.schedule == timedelta(minutes=5)
    assert {slo.metric for slo in model.slos} == {
        "accuracy",
        "drift.psi",
        "freshness.prediction_age",
    }
    freshness = next(s for s in model.slos if s.metric == "freshness.prediction_age")
    assert freshness.objective.threshold == 900
    assert freshness.for_ == timedelta(minutes=10)
    assert any(route.match == {"severity": "page"} for route in config.routing.routes)
    slack = config.receivers["ml-oncall"].slack
    assert slack is not None and slack.token is not None
    assert slack.token.get_secret_value() == TOKEN


def test_postgres_example_names_every_unset_variable() -> None:
    """Without its environment the production example fails, naming each missing variable
    with its field, and nothing else."""
    with pytest.raises(ConfigError) as caught:
        load_config(EXAMPLES / "postgres.yaml", environ={})
    problems = {(".".join(map(str, p.path)), p.message) for p in caught.value.problems}
    assert problems == {
        ("store", "environment variable VIGIL_STORE_URL is not set"),
        ("sources.shop_db.url", "environment variable SHOP_DB_URL is not set"),
        ("receivers.ml-oncall.slack.token", "environment variable SLACK_BOT_TOKEN is not set"),
        ("receivers.ml-alerts.slack.token", "environment variable SLACK_BOT_TOKEN is not set"),
    }


def test_sqlite_example_loads_without_any_environment() -> None:
    """examples/sqlite.yaml is the embedded default: no variables, a SQLite store, and a Slack
    receiver without a token that writes its payloads to a file."""
    config = load_config(EXAMPLES / "sqlite.yaml", environ={})
    assert config.store.get_secret_value().startswith("sqlite:///")
    assert all(s.url.get_secret_value().startswith("sqlite:///") for s in config.sources.values())
    assert list(config.models) == ["fraud-detector"]
    slack = config.receivers["ml-oncall"].slack
    assert slack is not None
    assert slack.token is None
    assert slack.outfile


@pytest.mark.parametrize(
    ("name", "env"),
    [("sqlite.yaml", {}), ("postgres.yaml", PROD_ENV), ("multiclass.yaml", {})],
    ids=["sqlite", "postgres", "multiclass"],
)
def test_config_check_on_a_good_file_exits_zero(name: str, env: dict[str, str]) -> None:
    """`vigil config check` on a valid file says ok on stdout and exits 0."""
    result = vigil("config", "check", EXAMPLES / name, env=env)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert result.stderr == ""


# --- every kind of mistake in examples/bad/ ----------------------------------------------------


def expectations(path: Path) -> dict[str, str]:
    """The `# expect:`, `# expect-line:` and `# expect-field:` comments at the top of a file."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^# (expect(?:-line|-field)?): (.+)$", line)
        if not match:
            break
        found[match.group(1)] = match.group(2)
    assert set(found) == {"expect", "expect-line", "expect-field"}, f"{path.name}: header"
    return found


def test_bad_examples_cover_each_kind_of_mistake() -> None:
    """examples/bad/ holds at least 60 files, one for each mistake the issues list."""
    names = {p.stem for p in BAD_EXAMPLES}
    assert len(names) >= 60
    assert names >= {
        "zero_window",
        "zero_schedule",
        "zero_blind_after",
        "store_unknown_dialect",
        "accuracy_above_one",
        "accuracy_with_unit",
        "freshness_without_unit",
        "roc_auc_multiclass",
        "log_loss_multiclass",
        "estimated_multiclass",
        "rmse_on_classifier",
        "wrong_type",
        "unknown_key",
        "missing_env_var",
        "broken_yaml_indent",
        "broken_yaml_bracket",
        "unknown_metric",
        "unknown_source",
        "unknown_receiver",
        "bad_objective",
        "window_not_multiple",
        "table_and_query",
        "scores_class_with_bar",
        "scores_class_blank",
        "scores_same_column",
        "scores_missing_column",
        "scores_one_class",
        "scores_on_binary",
    }


@pytest.mark.parametrize("path", BAD_EXAMPLES, ids=[p.name for p in BAD_EXAMPLES])
def test_config_check_reports_the_mistake_by_line_and_field(path: Path) -> None:
    """`vigil config check FILE` on a broken file exits 2 without a traceback and prints, within
    one screen, a line `FILE:LINE: FIELD: message` with the expected line, field and message."""
    expect = expectations(path)
    result = vigil("config", "check", path)
    assert_clean_failure(result)
    matching = [line for line in result.stderr.splitlines() if expect["expect"] in line]
    assert matching, result.stderr
    assert matching[0].startswith(f"{path}:{expect['expect-line']}: {expect['expect-field']}: ")


def test_config_check_on_a_missing_file_exits_two_with_a_clear_message(tmp_path: Path) -> None:
    """A file that does not exist is a usage error: exit 2 and a message naming the file."""
    missing = tmp_path / "nope.yaml"
    result = vigil("config", "check", missing)
    assert_clean_failure(result)
    assert f"{missing}: (top level): cannot read file: No such file or directory" in result.stderr


def test_config_check_on_a_file_that_is_not_text_exits_two(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported with their line, not as a decoding traceback."""
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"store: sqlite:///vigil.db\nsources: \xff\xfe\n")
    result = vigil("config", "check", path)
    assert_clean_failure(result)
    assert f"{path}:2: (top level): the file is not UTF-8 text" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "c.yaml:1: (top level): the file must be a mapping of settings"),
        ("- a\n- b\n", "c.yaml:1: (top level): the file must be a mapping of settings"),
        ("store: a\nstore: b\n", "c.yaml:2: (top level): YAML syntax error: found duplicate key"),
        ("store: a\n\tsources: {}\n", "c.yaml:2: (top level): YAML syntax error: found character"),
    ],
    ids=["empty", "a list", "duplicate key", "tab"],
)
def test_files_that_are_not_a_settings_mapping_are_reported(text: str, expected: str) -> None:
    """An empty file, a list, a duplicated key or a tab each give one problem with its line."""
    lines = problems_of(text)
    assert len(lines) == 1
    assert lines[0].startswith(expected)


def test_duplicate_key_message_does_not_quote_the_values() -> None:
    """A duplicated key is named without echoing either value (which could be a secret)."""
    (line,) = problems_of(f"store: {STORE_URL}\nstore: {STORE_URL}\n")
    assert 'duplicate key "store"' in line
    assert PASSWORD not in line


def test_several_problems_in_one_file_are_all_reported() -> None:
    """A wrong type, an unknown key, a bad objective and an unset variable in one file are
    all listed, each with its own line and field, instead of stopping at the first."""
    text = edited("    schedule: 5m\n", "    schedule: fast\n")
    text = edited("        severity: page\n", "        severity: page\n        windw: 7d\n", text)
    text = edited('objective: ">= 0.85"', 'objective: "about 0.85"', text)
    text = edited('{url: "sqlite:///shop.db"}', '{url: "${SHOP_DB_URL}"}', text)
    lines = problems_of(text)
    assert len(lines) == 4, lines
    assert "c.yaml:3: sources.shop_db.url: environment variable SHOP_DB_URL is not set" in lines
    assert any(line.startswith("c.yaml:8: models.fraud-detector.schedule: not a") for line in lines)
    assert any(
        line.startswith("c.yaml:15: models.fraud-detector.slos.0.objective: not an")
        for line in lines
    )
    assert any(
        line.startswith("c.yaml:17: models.fraud-detector.slos.0.windw: unknown key")
        for line in lines
    )


def test_several_dangling_references_are_all_reported() -> None:
    """An unknown source, metric and receiver in one file are reported together."""
    text = edited("    source: shop_db\n", "    source: shop\n")
    text = edited("metric: accuracy", "metric: no_such_metric", text)
    text = edited("default: [ml-oncall]", "default: [ml-oncall, bugs]", text)
    lines = problems_of(text)
    assert lines == [
        "c.yaml:6: models.fraud-detector.source: no source named 'shop'",
        "c.yaml:13: models.fraud-detector.slos.0.metric: unknown metric 'no_such_metric'; "
        f"`vigil metrics` lists the {len(metric_names())} known ones",
        "c.yaml:18: routing.default.1: no receiver named 'bugs'",
    ]


def test_a_misspelt_metric_gets_a_suggestion() -> None:
    """A metric name close to a known one is answered with 'did you mean', not the full list."""
    (line,) = problems_of(edited("metric: accuracy", "metric: acuracy"))
    assert line == (
        "c.yaml:13: models.fraud-detector.slos.0.metric: "
        "unknown metric 'acuracy'; did you mean 'accuracy'?"
    )


def test_a_bucket_that_does_not_divide_a_day_is_reported_on_its_own_line() -> None:
    """Checks that span several fields of a model still name the field at fault."""
    (line,) = problems_of(edited("    schedule: 5m\n", "    schedule: 5m\n    bucket: 7m\n"))
    assert line.startswith("c.yaml:9: models.fraud-detector.bucket: 'bucket' must divide one day")


def test_an_unset_variable_is_reported_once() -> None:
    """A field whose variable is unset gets the 'not set' problem only, not a second one about
    the empty value that stood in for it."""
    text = edited('{url: "sqlite:///shop.db"}', '{url: "sqlite:///shop.db", chunk_size: "${N}"}')
    assert problems_of(text) == [
        "c.yaml:3: sources.shop_db.chunk_size: environment variable N is not set"
    ]


def test_many_problems_still_fit_on_one_screen_through_the_cli(tmp_path: Path) -> None:
    """The CLI output for a file with several problems is one line per problem plus a heading."""
    path = tmp_path / "several.yaml"
    text = edited("    schedule: 5m\n", "    schedule: fast\n")
    text = edited("        severity: page\n", "        severity: urgent\n", text)
    text += "report: {weekly: mon 09:00, tz: Europe/Berlin}\n"
    path.write_text(text, encoding="utf-8")
    result = vigil("config", "check", path)
    assert_clean_failure(result)
    assert result.stderr.splitlines()[0] == f"invalid config {path}: 3 problem(s)"
    assert len(result.stderr.splitlines()) == 4
    assert f"{path}:8: models.fraud-detector.schedule: " in result.stderr
    assert f"{path}:16: models.fraud-detector.slos.0.severity: " in result.stderr
    assert f"{path}:21: report.tz: unknown key" in result.stderr


# --- secrets -----------------------------------------------------------------------------------

LEAKY = [
    pytest.param(
        'ml-oncall: {slack: {channel: "#ml-oncall", outfile: slack-payloads.jsonl}}',
        'ml-oncall: {slack: "${SLACK_BOT_TOKEN}"}',
        "receivers.ml-oncall.slack",
        id="token-where-a-mapping-belongs",
    ),
    pytest.param(
        "schedule: 5m",
        'schedule: "${SLACK_BOT_TOKEN}"',
        "models.fraud-detector.schedule",
        id="token-in-a-duration",
    ),
    pytest.param(
        'objective: ">= 0.85"',
        'objective: "${VIGIL_STORE_URL}"',
        "models.fraud-detector.slos.0.objective",
        id="url-in-an-objective",
    ),
    pytest.param(
        "store: sqlite:///vigil.db",
        'store: ["${VIGIL_STORE_URL}"]',
        "store",
        id="url-in-a-list",
    ),
    pytest.param(
        "source: shop_db",
        'source: "${VIGIL_STORE_URL}"',
        "models.fraud-detector.source",
        id="url-as-a-source-name",
    ),
    pytest.param(
        "default: [ml-oncall]",
        'default: ["${SLACK_BOT_TOKEN}"]',
        "routing.default.0",
        id="token-as-a-receiver-name",
    ),
    pytest.param(
        '{url: "sqlite:///shop.db"}',
        '{url: "${VIGIL_STORE_URL}", chunk_size: 10}',
        "sources.shop_db.chunk_size",
        id="url-beside-a-wrong-field",
    ),
]


@pytest.mark.parametrize(("old", "new", "field"), LEAKY)
def test_secrets_never_appear_in_config_errors(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    """A token or a URL password from the environment is not printed by `vigil config check`,
    even when the field holding it (or next to it) is wrong; the field is still named."""
    path = tmp_path / "leaky.yaml"
    path.write_text(edited(old, new), encoding="utf-8")
    result = vigil("config", "check", path, env=PROD_ENV)
    assert_clean_failure(result)
    output = result.stdout + result.stderr
    assert f": {field}: " in result.stderr
    assert TOKEN not in output
    assert PASSWORD not in output


def test_secret_fields_do_not_reveal_their_values_in_repr() -> None:
    """SecretStr fields (store, source URLs, tokens) print as masked in repr, str and JSON."""
    config = load_config(EXAMPLES / "postgres.yaml", environ=PROD_ENV)
    for text in (repr(config), str(config), config.model_dump_json(), repr(config.receivers)):
        assert TOKEN not in text
        assert PASSWORD not in text
        assert "shop-db-pw-456" not in text


def test_redactor_masks_tokens_and_url_passwords() -> None:
    """Redactor replaces a configured token, a whole URL, and a URL's password on its own."""
    config = load_config(EXAMPLES / "postgres.yaml", environ=PROD_ENV)
    redact = Redactor(config)
    text = (
        f"slack said not_authed for {TOKEN}; cannot connect to {STORE_URL}; "
        f'password authentication failed: "{PASSWORD}"'
    )
    masked = redact(text)
    assert TOKEN not in masked
    assert PASSWORD not in masked
    assert "shop-db-pw-456" not in redact(SHOP_URL)
    assert masked.count(MASK) == 3
    assert redact("nothing secret here") == "nothing secret here"


# --- durations and objectives ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    """A number and one unit of s, m, h, d or w is a duration."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "fast", "15", "m", "-5m", "15 minutes", "15mm", "1h30m"])
def test_durations_reject_garbage(text: str) -> None:
    """Anything else is refused with a message that names the accepted units."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "op", "threshold"),
    [(">= 0.85", ">=", 0.85), ("<0.2", "<", 0.2), ("> 1e-3", ">", 0.001), ("< 15m", "<", 900.0)],
)
def test_objectives_parse(text: str, op: str, threshold: float) -> None:
    """An objective is a comparison and a number, or a duration kept in seconds."""
    objective = parse_objective(text)
    assert (objective.op, objective.threshold) == (op, threshold)


def test_objective_judges_values_in_its_direction() -> None:
    """`>= 0.85` is met by higher values, `< 15m` by ages below 900 seconds."""
    at_least = parse_objective(">= 0.85")
    assert at_least.higher_is_better
    assert at_least.is_good(0.85) and not at_least.is_good(0.84)
    fresh = parse_objective("< 15m")
    assert not fresh.higher_is_better
    assert fresh.is_good(899) and not fresh.is_good(900)


@pytest.mark.parametrize("text", ["", "0.85", "=> 0.85", "== 1", ">=", ">= fast", "at least 1"])
def test_objectives_reject_garbage(text: str) -> None:
    """A missing or unknown comparison, or a threshold that is neither a number nor a
    duration, is refused."""
    with pytest.raises(ValueError, match=r"not an objective|not a duration"):
        parse_objective(text)


def test_durations_and_objectives_parse_inside_a_config() -> None:
    """In a config file, `15m`, `>= 0.85` and `< 15m` become typed values."""
    text = edited(
        "        severity: page\n",
        "        severity: page\n"
        '      - {metric: freshness.prediction_age, objective: "< 15m", for: 15m}\n',
    )
    config = parse_config(text, "c.yaml", {})
    assert isinstance(config, VigilConfig)
    quality, freshness = config.models["fraud-detector"].slos
    assert quality.objective.threshold == 0.85 and quality.objective.op == ">="
    assert str(quality.objective) == ">= 0.85"
    assert freshness.objective.threshold == 900
    assert freshness.for_ == timedelta(minutes=15)


def test_many_different_problems_still_fit_on_one_screen() -> None:
    """Forty unrelated problems: a heading, the first eighteen, then a count of the rest,
    twenty lines in all."""
    from monitor.config import ConfigError, Problem

    error = ConfigError("c.yaml", [Problem(i + 1, ("models", f"m{i}"), "bad") for i in range(40)])
    lines = error.render().splitlines()
    assert lines[0] == "invalid config c.yaml: 40 problem(s)"
    assert len(lines) == 20
    assert lines[1] == "c.yaml:1: models.m0: bad"
    assert lines[18] == "c.yaml:18: models.m17: bad"
    assert lines[-1] == "... and 22 more problem(s)"


def test_forty_broken_slos_are_grouped_into_one_line() -> None:
    """The same mistake in forty SLOs is one line naming them as ranges, not forty lines;
    another mistake in some of them gets its own line."""
    objectives = [">= 1.5" if i in (3, 7) else ">= 0.9" for i in range(40)]
    slos = "".join(
        f'      - {{metric: accuracy, window: 0h, objective: "{objective}"}}\n'
        for objective in objectives
    )
    text = edited(
        '      - metric: accuracy\n        window: 24h\n        objective: ">= 0.85"\n'
        "        severity: page\n",
        slos,
    )
    lines = problems_of(text)
    assert lines == [
        "c.yaml:13: models.fraud-detector.slos[0–39].window: must be longer than 0s "
        "(a zero interval or window cannot work) (40 times)",
    ], lines
    text = text.replace("window: 0h", "window: 24h")
    assert problems_of(text) == [
        "c.yaml:16: models.fraud-detector.slos[3, 7].objective: 1.5 is outside the range of "
        "accuracy (between 0 and 1) (2 times)",
    ]


def test_grouped_ranges_name_runs_and_single_items() -> None:
    """Runs of three or more indices collapse to a range, shorter runs stay listed."""
    from monitor.config.problems import ranges

    assert ranges([3, 7, *range(12, 41)]) == "3, 7, 12–40"
    assert ranges([0, 1]) == "0, 1"
    assert ranges([5]) == "5"
    assert ranges([9, 8, 7, 1]) == "1, 7–9"


def test_forty_broken_slos_through_the_cli_fit_one_screen(tmp_path: Path) -> None:
    """Through `vigil config check`: exit 2 and at most twenty lines for 40 broken SLOs with
    two different mistakes each (before grouping this printed 32 lines)."""
    slos = "".join(
        f'      - {{metric: roc_auc, window: 0h, objective: ">= 5m", severity: page}}  # {i}\n'
        for i in range(40)
    )
    text = edited(
        '      - metric: accuracy\n        window: 24h\n        objective: ">= 0.85"\n'
        "        severity: page\n",
        slos,
    )
    path = tmp_path / "forty.yaml"
    path.write_text(text.replace("binary_classification", "multiclass_classification"))
    result = vigil("config", "check", path)
    assert_clean_failure(result)
    lines = result.stderr.splitlines()
    assert lines[0] == f"invalid config {path}: 40 problem(s)"
    assert len(lines) == 2, lines
    assert lines[1].startswith(f"{path}:13: models.fraud-detector.slos[0–39].window: ")


# --- value ranges, units and metric/task pairing ------------------------------------------------


def slo_problems_for(task: str, metric: str, objective: str) -> list[str]:
    text = edited("binary_classification", task)
    text = edited("metric: accuracy", f"metric: {metric}", text)
    return problems_of(edited('">= 0.85"', f'"{objective}"', text))


def test_every_metric_fits_some_task_and_has_sane_bounds() -> None:
    """Each registered metric declares the tasks it applies to and a non-empty range."""
    from detectors.base import ALL_TASKS
    from detectors.registry import METRICS

    for name, (info, _) in METRICS.items():
        assert info.tasks and info.tasks <= ALL_TASKS, name
        low, high = info.bounds
        assert low < high, name
        assert info.unit in ("", "s"), name


@pytest.mark.parametrize(
    ("task", "metric", "objective"),
    [
        ("binary_classification", "accuracy", ">= 0.85"),
        ("binary_classification", "roc_auc", ">= 0.7"),
        ("binary_classification", "estimated.f1", ">= 0.5"),
        ("binary_classification", "log_loss", "< 0.7"),
        ("multiclass_classification", "macro_f1", ">= 0.6"),
        ("multiclass_classification", "accuracy", ">= 0.6"),
        ("regression", "rmse", "< 12.5"),
        ("regression", "bias", "> -3"),
        ("regression", "r2", ">= 0.3"),
        ("regression", "drift.psi", "< 0.2"),
        ("multiclass_classification", "freshness.label_lag_p95", "< 0.5s"),
        ("binary_classification", "freshness.prediction_age", "< 15m"),
    ],
)
def test_sensible_slos_pass(task: str, metric: str, objective: str) -> None:
    """The checks refuse only what cannot work: each of these loads."""
    text = edited("binary_classification", task)
    text = edited("metric: accuracy", f"metric: {metric}", text)
    text = edited('">= 0.85"', f'"{objective}"', text)
    config = parse_config(text, "c.yaml", {})
    assert config.models["fraud-detector"].slos[0].metric == metric


def test_metrics_are_refused_on_tasks_they_do_not_fit() -> None:
    """Over the whole registry: every metric on every task it does not declare is refused
    at its `metric` line (no class metric on a regression model, no regression error on a
    classifier, no binary-only metric such as `pr_auc` on a multiclass model)."""
    from detectors.base import ALL_TASKS
    from detectors.registry import METRICS

    refused = 0
    for name, (info, _) in METRICS.items():
        for task in sorted(ALL_TASKS - info.tasks):
            objective = "< 1s" if info.unit == "s" else "< 0.5"
            assert slo_problems_for(task, name, objective) == [
                f"c.yaml:13: models.fraud-detector.slos.0.metric: {name} does not apply to a "
                f"{task} model (only {' or '.join(sorted(info.tasks))})"
            ]
            refused += 1
    # 18 class metrics on regression; on multiclass 5 binary-only ones and 5 errors; 5 on binary
    assert refused >= 33


def test_drift_features_and_segments_must_be_logged_by_the_model() -> None:
    """Named drift features must be logged features (or `@score`/`@prediction`), and
    `segment_by` a declared segment; each unknown name is reported at its own list item."""
    text = edited("score: score}", "score: score, features: [amount], segments: [country]}")
    ok = edited(
        "        severity: page\n",
        "        severity: page\n        segment_by: country\n"
        '      - {metric: drift.psi, features: [amount, "@score"], objective: "< 0.2"}\n',
        text,
    )
    assert parse_config(ok, "c.yaml", {}).models["fraud-detector"].slos[1].features == [
        "amount",
        "@score",
    ]
    bad = ok.replace("segment_by: country", "segment_by: region").replace(
        '[amount, "@score"]', "[amout, amount, scores]"
    )
    assert problems_of(bad) == [
        "c.yaml:17: models.fraud-detector.slos.0.segment_by: 'region' is not one of "
        "'predictions.segments': its slices are never summarised",
        *(
            f"c.yaml:18: models.fraud-detector.slos.1.features.{i}: no feature '{name}' in "
            "'predictions.features' (nor @score or @prediction): this SLO would never be judged"
            for i, name in ((0, "amout"), (2, "scores"))
        ),
    ]


def test_vigil_metrics_lists_each_metrics_tasks_and_range() -> None:
    """`vigil metrics --json` tells a config writer what `config check` enforces."""
    import json

    result = vigil("metrics", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["metric"]: row for row in json.loads(result.stdout)}
    assert rows["roc_auc"]["tasks"] == ["binary_classification", "multiclass_classification"]
    assert rows["pr_auc"]["tasks"] == ["binary_classification"]
    assert rows["roc_auc"]["range"] == [0.0, 1.0]
    assert rows["rmse"]["tasks"] == ["regression"] and rows["rmse"]["range"] == [0.0, None]
    assert rows["freshness.prediction_age"]["unit"] == "s"
    assert len(rows["drift.psi"]["tasks"]) == 3


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("notadb://x", "no database dialect 'notadb'"),
        ("vigil.db", "not a database URL"),
        ("sqlite:vigil.db", "not a database URL"),
        ("postgresql+nosuchdriver://u@h/db", "no database dialect 'postgresql+nosuchdriver'"),
        ("oracle+cx_oracle://u@h/db", "the driver for 'oracle+cx_oracle' is not installed"),
    ],
)
def test_store_urls_that_no_driver_can_open_are_refused(url: str, message: str) -> None:
    """The store URL is checked against SQLAlchemy's dialects and their drivers, without
    connecting; the message names the dialect, never the URL."""
    text = edited("store: sqlite:///vigil.db", f"store: {url}")
    lines = problems_of(text)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"c.yaml:1: store: {message}")


def test_url_problems_never_echo_a_password() -> None:
    """A password in a broken URL read from the environment stays out of the message."""
    text = edited('{url: "sqlite:///shop.db"}', '{url: "${SHOP_DB_URL}"}')
    lines = problems_of(text, {"SHOP_DB_URL": "nodb://reader:s3cret-pw@warehouse/shop"})
    assert lines == [
        "c.yaml:3: sources.shop_db.url: no database dialect 'nodb' "
        "(e.g. sqlite:///vigil.db or postgresql+psycopg://user@host/db)"
    ]
    assert "s3cret" not in "".join(lines)


def test_the_installed_drivers_pass() -> None:
    """SQLite and PostgreSQL through psycopg, the two stores Vigil ships with, pass, and so
    do the DuckDB and Spark sources of the extras the dev environment installs."""
    from monitor.config.semantics import url_problem

    assert url_problem("sqlite:///vigil.db") is None
    assert url_problem("sqlite://") is None
    assert url_problem("postgresql+psycopg://vigil:pw@db.internal:5432/vigil") is None
    assert url_problem("duckdb:///shop.duckdb") is None  # the duckdb extra, installed by dev
    assert url_problem("spark:local[2]") is None  # a Spark source: PySpark, not SQLAlchemy
