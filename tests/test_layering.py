"""Layering rules, checked statically over the source (every import statement, lazy ones included):

* healda_core never imports the CLI stack (typer, rich, click, healda_cli);
* only healda_core/kernels/ imports triton (healda_cli neither);
* healda_core/kernels/ imports no other healda_core package or module;
* only healda_core/grid.py imports healpy, besides the nature run's spherical harmonics (synth/nature.py).

Each rule is also run on small sources that break it, so a rule that could never fail would fail here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI_STACK = {"typer", "rich", "click", "healda_cli"}
HEALPY_ALLOWED = {"healda_core/grid.py", "healda_core/synth/nature.py"}


def _imports(rel: str, source: str) -> list[str]:
    """Absolute dotted names of the modules ``source`` (the file ``rel`` of the checkout) imports; for
    ``from pkg import a, b`` each ``pkg.a`` and ``pkg.b`` (a name may be a module or an attribute)."""
    package = rel.removesuffix(".py").split("/")[:-1]
    names = []
    for node in ast.walk(ast.parse(source, filename=rel)):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            names.extend(f"{mod}.{a.name}" for a in node.names)
    return names


def _above_kernels(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "healda_core" and (len(parts) == 1 or parts[1] != "kernels")


def violations(files: dict[str, str]) -> list[str]:
    """Every broken rule in ``files`` (path relative to the checkout -> source), one line each."""
    out = []
    for rel, source in sorted(files.items()):
        names = _imports(rel, source)
        top = {n.split(".")[0] for n in names}
        in_kernels = rel.startswith("healda_core/kernels/")
        if rel.startswith("healda_core/") and top & CLI_STACK:
            out.append(f"{rel}: imports the CLI stack {sorted(top & CLI_STACK)}")
        if "triton" in top and not in_kernels:
            out.append(f"{rel}: imports triton outside healda_core/kernels/")
        above = sorted(n for n in names if _above_kernels(n))
        if in_kernels and above:
            out.append(f"{rel}: kernels/ imports {above}")
        if "healpy" in top and rel not in HEALPY_ALLOWED:
            out.append(f"{rel}: imports healpy outside grid.py")
    return out


def _tree() -> dict[str, str]:
    files = sorted((ROOT / "healda_core").rglob("*.py")) + sorted((ROOT / "healda_cli").rglob("*.py"))
    return {f.relative_to(ROOT).as_posix(): f.read_text() for f in files}


def test_the_library_keeps_its_layers():
    files = _tree()
    assert len(files) > 50 and "healda_core/grid.py" in files and "healda_core/kernels/tuning.py" in files
    assert violations(files) == []


def test_each_rule_fails_on_a_violation():
    bad = {
        "healda_core/plot.py": "def f():\n    from rich.console import Console\n",
        "healda_core/obs/qc.py": "import typer\n",
        "healda_core/model/film.py": "import triton.language as tl\n",
        "healda_cli/commands/bench.py": "from triton import cdiv\n",
        "healda_core/kernels/tuning.py": "def f():\n    from healda_core.checkpoint import read_checkpoint\n",
        "healda_core/kernels/film_op.py": "from ..bench import kernels\n",
        "healda_core/kernels/launch.py": "from healda_core import presets\n",
        "healda_core/kernels/packing.py": "import healda_core.errors\n",
        "healda_core/static.py": "import healpy\n",
        "healda_core/synth/observe.py": "from healpy import ang2vec\n",
    }
    found = violations(bad)
    assert len(found) == len(bad), found
    for rel in bad:
        assert any(v.startswith(rel + ":") for v in found), rel
    allowed = {
        "healda_core/grid.py": "import healpy\n",
        "healda_core/synth/nature.py": "import healpy\n",
        "healda_core/kernels/film_op.py": "import triton\nfrom healda_core.kernels import film\nfrom . import launch\n"
                                          "from healda_core import kernels\nimport healda_core.kernels.tuning\n",
        "healda_core/tune.py": "from healda_core.kernels import tuning\nfrom healda_core.checkpoint import x\n",
    }
    assert violations(allowed) == []


def test_importing_core_loads_no_cli_package():
    code = ("import sys, healda_core, healda_core.model, healda_core.obs, healda_core.grid; "
            "bad = [m for m in ('typer', 'rich', 'healda_cli') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
