"""Everything a tick needs, built once from the config: store sessions and source engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from alerts.suppression import sync_config_silences
from monitor.config.models import ModelConfig, VigilConfig
from monitor.core.redact import Redactor
from monitor.ingest.columnar import release
from monitor.ingest.registry import SOURCES, Source, kind_of
from monitor.store.db import make_engine, session_factory, upgrade
from monitor.store.state import BucketCache


@dataclass
class Runtime:
    config: VigilConfig
    store: Engine
    sessions: sessionmaker[Session]
    state_dir: Path
    redact: Redactor
    source_engines: dict[str, Any] = field(default_factory=dict)
    """Per source name, what its sources share: an SQLAlchemy engine, a Spark session."""
    bucket_cache: BucketCache = field(default_factory=dict)
    replaying: bool = False
    """A backtest replays a source that already holds its whole history: rows after the
    simulated now are not future-dated, only those after the real present are."""

    def source_for(self, model_name: str, spec: ModelConfig | None = None) -> Source:
        """The model's source, of the kind its URL names (`monitor.ingest.registry`);
        `spec` reads it with another version of the model's config (a baseline period)."""
        model = spec or self.config.models[model_name]
        config = self.config.sources[model.source]
        url = config.url.get_secret_value()
        kind = SOURCES[kind_of(url)]
        handle = self.source_engines.get(model.source)
        if handle is None:
            handle = kind.connect(url, config)
            self.source_engines[model.source] = handle
        return kind.build(handle, model, config.chunk_size)

    def close(self) -> None:
        for engine in self.source_engines.values():
            release(engine)
            engine.dispose()
        self.store.dispose()


def open_runtime(config: VigilConfig, state_dir: Path, migrate: bool = True) -> Runtime:
    """Connect to the store (migrating it to the current schema) and prepare the sources."""
    store = make_engine(config.store.get_secret_value())
    if migrate:
        upgrade(store)
    sessions = session_factory(store)
    with sessions.begin() as session:
        sync_config_silences(session, config, datetime.now(UTC))
    return Runtime(
        config=config,
        store=store,
        sessions=sessions,
        state_dir=state_dir,
        redact=Redactor(config),
    )
