"""The repository is a product, not a lab notebook: no tracked file is named or described by a work session, a
run number or a dated experiment id; the benchmark suite stays small and docs/benchmarks.md current."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# content: the word for a work session (pytest's scope="session" and hook names aside), per-run script names,
# run ids with a letter ("run 12b", "run1b"), numbered runs ("run1", "(run 3)", "(call 8)"), result files named by
# run ("kvr_s12c.log"), first-person trial history
_TEXT_RULES = [
    ("work session", re.compile(r"\bsessions?\b", re.I)),
    ("per-run script", re.compile(r"gpu_session", re.I)),
    ("run id", re.compile(r"\brun[ _-]?\d+[a-z]\b", re.I)),
    ("numbered run", re.compile(r"(?<![a-z])run\d+\b|\((?:run|call) \d+[a-z]?\b", re.I)),
    ("per-run result name", re.compile(r"[a-z0-9]_s\d+[a-z]?\b")),
    ("trial history", re.compile(r"\bwe (?:tried|measured|reverted|dropped)\b", re.I)),
]
_ALLOWED = re.compile(r"""scope\s*=\s*["']session["']""")  # pytest's fixture scope
# names: a session or run in the name, a per-run suffix (_s12c), a date
_NAME_RULES = [
    ("work session", re.compile(r"session", re.I)),
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


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    res = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [p for p in res.stdout.splitlines() if (ROOT / p).is_file()]


def test_no_file_is_named_after_a_session_run_or_date():
    bad = {p: name_violations(p) for p in _tracked()}
    assert {p: r for p, r in bad.items() if r} == {}


def test_no_file_reads_like_a_development_diary():
    bad = []
    for p in _tracked():
        if p == "tests/test_repo.py":  # holds the examples below
            continue
        try:
            text = (ROOT / p).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary
        bad += [f"{p}:{i}: [{rule}] {line[:120]}" for i, rule, line in text_violations(text)]
    assert bad == []


def test_benchmark_suite_and_its_doc_stay_small():
    bench = [p for p in _tracked() if p.startswith("benchmarks/")]
    assert len(bench) <= 25, bench
    assert len((ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8").splitlines()) <= 250


@pytest.mark.parametrize("line", [
    "Session 12 (same day; NVIDIA H200)",
    "measured in session 11, see below",
    "the session-7 kernels",
    "Device calls `benchmarks/gpu_session11a.sh`",
    "raw results `benchmarks/results/kernels_vs_reference_s12c.json`",
    "log kvr_s9a.log",
    "the 8.8 ms figure of run 12b",
    "results_h200_2026-11-29_run1.json",
    "Reading (run 3, before the change)",
    "Tried: we tried a work queue",
])
def test_diary_lines_are_caught(line):
    assert text_violations(f"ok line\n{line}\n") != []


@pytest.mark.parametrize("line", [
    '@pytest.fixture(scope="session")',
    "def pytest_sessionstart(session_start): ...",
    "the backward runs 32 programs per SM",
    "raise UsageError('the saved state does not fit this run')",
    "t_s = int(np.datetime64(analysis, 's').astype(np.int64))",
    "Rerun: `bash benchmarks/run.sh kernels` (2026-11-29, NVIDIA H200)",
    "results/kernels_h200.json, forward_fa3_h200.json",
    "step_s = statistics.median(times)",
])
def test_product_lines_pass(line):
    assert text_violations(line) == []


@pytest.mark.parametrize("path,caught", [
    ("benchmarks/gpu_session12e.sh", True),
    ("benchmarks/results/kvr_s10g.log", True),
    ("benchmarks/results/assimilate_h200_2026-11-29.json", True),
    ("benchmarks/results_run1.json", True),
    ("benchmarks/results/kernels_h200.json", False),
    ("benchmarks/run.sh", False),
    ("healda_core/obs/sorting.py", False),
    ("tests/train/test_resume_refusals.py", False),
])
def test_names_are_checked(path, caught):
    assert bool(name_violations(path)) is caught
