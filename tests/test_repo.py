"""The repository is a product, not a lab notebook: no tracked file is named or described like a work log (a
numbered run, a per-run result name, a dated experiment id, first-person trial history); the benchmark suite
stays small and docs/benchmarks.md current.

This file is scanned like every other: the patterns are written so that they do not match their own source
(a one-letter class such as ``[s]`` breaks the word in the source, not in what it matches) and the probes that
must be caught are assembled at run time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# content: the word for a work period (pytest's fixture scope and hook names aside), per-run script names,
# run ids with a letter, numbered runs, result files named by run, first-person trial history
_TEXT_RULES = [
    ("work-log word", re.compile(r"\bses[s]ions?\b", re.I)),
    ("per-run script", re.compile(r"gpu_ses[s]ion", re.I)),
    ("run id", re.compile(r"\brun[ _-]?\d+[a-z]\b", re.I)),
    ("numbered run", re.compile(r"(?<![a-z])run\d+\b|\((?:run|call) \d+[a-z]?\b", re.I)),
    ("per-run result name", re.compile(r"[a-z0-9]_s\d+[a-z]?\b")),
    ("trial history", re.compile(r"\bwe (?:tried|measured|reverted|dropped)\b", re.I)),
]
_ALLOWED = re.compile(r"""scope\s*=\s*["']ses[s]ion["']""")  # pytest's fixture scope
# names: the work-log word or a run in the name, a per-run suffix, a date
_NAME_RULES = [
    ("work-log word", re.compile(r"ses[s]ion", re.I)),
    ("numbered run", re.compile(r"(?:^|[_\-/.])run[_\-]?\d", re.I)),
    ("per-run suffix", re.compile(r"_s\d+[a-z]?(?=[._/-]|$)")),
    ("date", re.compile(r"\d{4}-\d{2}-\d{2}|20\d{6}")),
]


def text_violations(text: str) -> list[tuple[int, str, str]]:
    """(line number, rule, line) for every line of ``text`` that reads like a development diary."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        clean = _ALLOWED.sub("", line)
        out += [(i, rule, line.strip()) for rule, rx in _TEXT_RULES if rx.search(clean)]
    return out


def name_violations(path: str) -> list[str]:
    """Rules that a tracked file's path breaks."""
    return [rule for rule, rx in _NAME_RULES if rx.search(path)]


def diary_report(root: Path, paths: list[str]) -> list[str]:
    """``path:line: [rule] text`` for every line of the text files ``paths`` (under ``root``) that breaks a rule."""
    bad = []
    for p in paths:
        try:
            text = (root / p).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary
        bad += [f"{p}:{i}: [{rule}] {line[:120]}" for i, rule, line in text_violations(text)]
    return bad


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    res = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [p for p in res.stdout.splitlines() if (ROOT / p).is_file()]


def test_no_file_name_reads_like_a_work_log():
    bad = {p: name_violations(p) for p in _tracked()}
    assert {p: r for p, r in bad.items() if r} == {}


def test_no_file_reads_like_a_development_diary():
    assert diary_report(ROOT, _tracked()) == []


def test_benchmark_suite_and_its_doc_stay_small():
    bench = [p for p in _tracked() if p.startswith("benchmarks/")]
    assert len(bench) <= 25, bench
    assert len((ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8").splitlines()) <= 250


# The probes are assembled from pieces so that this file itself reads clean: W is the work-log word, R the
# run word, S a per-run suffix marker, WE the first-person subject.
W, R, S, WE = "ses" + "sion", "r" + "un", "_" + "s", "w" + "e"

CAUGHT_LINES = [
    f"{W.title()} 12 (same day; NVIDIA H200)",
    f"measured in {W} 11",
    f"the {W}-7 kernels",
    f"`benchmarks/gpu_{W}11a.sh`",
    f"`benchmarks/results/kernels_vs_reference{S}12c.json`",
    f"kvr{S}9a.log",
    f"the figure of {R} 12b",
    f"results_h200_{R}1.json",
    f"Reading ({R} 3, before the change)",
    f"{WE.title()} tried a work queue",
]
CAUGHT_NAMES = [
    f"benchmarks/gpu_{W}12e.sh",
    f"benchmarks/results/kvr{S}10g.log",
    "benchmarks/results/assimilate_h200_" + "-".join(["2026", "11", "29"]) + ".json",
    f"benchmarks/results_{R}1.json",
]


@pytest.mark.parametrize("line", CAUGHT_LINES)
def test_diary_lines_are_caught(line):
    assert text_violations(f"ok line\n{line}\n") != []


@pytest.mark.parametrize("line", [
    '@pytest.fixture(scope="session")',
    "def pytest_sessionstart(session_start): ...",
    "the backward runs 32 programs per SM",
    "raise UsageError('the saved state does not fit this run')",
    "t_s = int(np.datetime64(analysis, 's').astype(np.int64))",
    "Reproduce with `bash benchmarks/run.sh kernels` (NVIDIA H200, 2026-11-29)",
    "results/kernels_h200.json, forward_fa3_h200.json",
    "step_s = statistics.median(times)",
])
def test_product_lines_pass(line):
    assert text_violations(line) == []


@pytest.mark.parametrize("path,caught", [(p, True) for p in CAUGHT_NAMES] + [
    ("benchmarks/results/kernels_h200.json", False),
    ("benchmarks/run.sh", False),
    ("healda_core/obs/sorting.py", False),
    ("tests/train/test_resume_refusals.py", False),
])
def test_names_are_checked(path, caught):
    assert bool(name_violations(path)) is caught


def test_the_scan_reports_each_offending_line_of_a_file(tmp_path):
    (tmp_path / "clean.md").write_text("# Kernels\n\nthe backward runs 32 programs per SM\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("\n".join(["# Notes", *CAUGHT_LINES]) + "\n", encoding="utf-8")
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00" + W.encode())
    bad = diary_report(tmp_path, ["clean.md", "notes.md", "blob.bin"])
    assert {int(b.split(":")[1]) for b in bad} == set(range(2, 2 + len(CAUGHT_LINES)))
    assert all(b.startswith("notes.md:") for b in bad)
    assert diary_report(tmp_path, ["clean.md"]) == []
