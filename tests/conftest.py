"""Shared test fixtures. Reference data lives in ../shared beside the checkout (CI has it there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HEALDA_SHARED", ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A file under ../shared; fails (never skips) when it is missing, so CI cannot pass vacuously."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.fail(f"reference file {p} is missing: tests need ../shared beside the checkout (or HEALDA_SHARED)")
    return p


@pytest.fixture(scope="session")
def fixture_small() -> dict:
    """The PhysicsNeMo 2.2.2 reference fixture (config, state_dict, inputs, output, intermediates)."""
    return torch.load(shared_path("fixtures", "fixture_small.pt"), weights_only=True)


@pytest.fixture
def one_thread():
    """torch on one thread for the test (many tiny cases, where thread start-up and contention dominate)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch):
    """Deterministic CLI output: no TTY forcing, no colour."""
    for var in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
