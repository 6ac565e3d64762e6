"""``docs/reliability.md`` names the tests that hold each promise: every one it names must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_named_in_the_reliability_doc_exists():
    doc = (ROOT / "docs" / "reliability.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc)
    assert len(named) >= 30
    missing = [f"{f}::{t}" for f, t in named
               if not (ROOT / f).is_file() or not re.search(rf"^def {t}\(", (ROOT / f).read_text(), re.M)]
    assert missing == []
