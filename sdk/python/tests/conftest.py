"""One real server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness import RunningServer


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    running = RunningServer()
    yield running
    running.stop()
