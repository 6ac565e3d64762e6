"""The fuzz suite runs single-threaded: many tiny cases, where thread start-up and contention dominate."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield
