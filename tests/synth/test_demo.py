"""A shortened `healda demo` runs end to end and writes a report with real images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from healda_cli.main import app


@pytest.mark.slow
def test_short_demo_runs_and_reports(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path), "--minutes", "0.05", "--days", "3",
                                   "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["scores"]) == {"healda", "climatology", "oi"}
    for method, scores in out["scores"].items():
        assert all(np.isfinite(v) and v >= 0 for v in scores.values()), method
    # OI of in-situ observations must improve on its own background (climatology) where sondes observe
    assert out["scores"]["oi"]["z500"] < out["scores"]["climatology"]["z500"]
    report = (tmp_path / "report.md").read_text()
    assert "| z500 |" in report
    pngs = [line.split("(")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    assert len(pngs) == 9
    for name in pngs:
        img = np.asarray(Image.open(tmp_path / name).convert("L"), dtype=float)
        assert img.shape[0] > 200 and img.shape[1] > 400
        assert img.std() > 10  # not a blank or constant image
    assert json.loads((tmp_path / "scores.json").read_text())["train_steps"] >= 10
