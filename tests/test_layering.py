"""Layering rules: healda_core never imports CLI packages; only healda_core/kernels imports triton."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_cli_packages_and_triton_only_in_kernels():
    files = sorted((ROOT / "healda_core").rglob("*.py"))
    assert files
    for f in files:
        names = _imports(f)
        assert not names & {"typer", "rich", "healda_cli", "click"}, f
        if "kernels" not in f.relative_to(ROOT / "healda_core").parts:
            assert "triton" not in names, f
    for f in sorted((ROOT / "healda_cli").rglob("*.py")):
        assert "triton" not in _imports(f), f


def test_importing_core_loads_no_cli_package():
    code = ("import sys, healda_core, healda_core.model, healda_core.obs, healda_core.grid; "
            "bad = [m for m in ('typer', 'rich', 'healda_cli') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
