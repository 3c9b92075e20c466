"""Prints the fault suite's figures (one line per scenario) at the end of the run."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from tests.faults.harness import FIGURES
from tests.faults.private_pg import PrivatePostgres


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault injection: figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """One throwaway PostgreSQL server for the scenarios that restart or share it; stopped at
    the end, and also when pytest is stopped with SIGTERM (as a KeyboardInterrupt, so the
    finalizers run) or exits otherwise (atexit). After a kill -9 the next run reaps it."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.close()
        signal.signal(signal.SIGTERM, previous)
