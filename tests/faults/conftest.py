"""Prints the fault suite's figures (one line per scenario) at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.harness import FIGURES
from tests.faults.private_pg import PrivatePostgres


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault injection: figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """One throwaway PostgreSQL server for the scenarios that restart or share it."""
    server = PrivatePostgres()
    yield server
    server.close()
