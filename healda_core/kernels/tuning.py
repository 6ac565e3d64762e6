"""Autotuning of the Triton kernels, keyed by shape buckets, with an opt-in persistent cache.

Each kernel has a small list of candidate configs and a key function that maps a call to a *shape
bucket* (dtype, head layout, log2 buckets of sizes). The first call in a new bucket times every
candidate on the real inputs (back-to-back calls between CUDA events, median of rounds: :func:`time_ms`)
and keeps the fastest in memory.

Persistent cache (opt-in, nothing is written unless asked):
* ``HEALDA_AUTOTUNE_CACHE_DIR=DIR`` (or :func:`configure` ``(cache_dir=DIR, save=True)``, which
  ``healda autotune --save`` uses) reads ``DIR/healda-autotune-<gpu>-triton<ver>-<src>.json`` at the first
  lookup and rewrites it whenever a new bucket is tuned. ``<src>`` hashes the kernel sources, so a
  kernel edit or a Triton upgrade starts a new file.
* Writes hold an exclusive file lock (``flock`` on ``<file>.lock``), merge what is on disk and replace the
  file atomically (temporary file in the same folder + ``os.replace``), so concurrent processes and ranks never
  leave a torn file and never lose each other's entries.
* A corrupt or foreign file (other GPU, Triton, sources, format) gives a warning and is ignored:
  the buckets are re-tuned, never a crash.
* Deterministic mode (``HEALDA_AUTOTUNE=deterministic``, :func:`configure` ``(deterministic=True)``
  or ``healda autotune --deterministic``) never times anything: cached config or the default.
  ``HEALDA_AUTOTUNE=off`` is the same. No tuning happens on the CPU interpreter or during CUDA graph
  capture either.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import math
import os
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

FORMAT = 1
# kernels and their ops (the ops hold the candidate configs): an edit to any of them starts a new cache file
_SOURCES = ("pixel_attn.py", "pixel_attn_op.py", "film.py", "film_bwd.py", "film_op.py", "packing.py")
_LOCK = threading.Lock()


def bucket(n: float) -> int:
    """log2 bucket of a positive size (0 for n <= 1)."""
    return 0 if n <= 1 else int(round(math.log2(n)))


def _source_hash() -> str:
    h = hashlib.sha1()
    here = Path(__file__).resolve().parent
    for name in _SOURCES:
        p = here / name
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()[:10]


def gpu_tag() -> str:
    """The current CUDA device name with spaces replaced (``cpu`` without CUDA)."""
    if not torch.cuda.is_available():
        return "cpu"
    return torch.cuda.get_device_name().replace(" ", "-")


def _triton_version() -> str:
    try:
        import triton

        return triton.__version__
    except Exception:  # pragma: no cover - triton always present with the kernels
        return "none"


class _State:
    def __init__(self) -> None:
        self.cache_dir: Path | None = None
        self.save = False
        self.deterministic = False
        self.loaded = False
        self.tuned_s = 0.0  # seconds spent timing candidates in this process
        self.tuned_buckets = 0
        self.read_env()

    def read_env(self) -> None:
        d = os.environ.get("HEALDA_AUTOTUNE_CACHE_DIR", "").strip()
        if d:
            self.cache_dir, self.save = Path(d).expanduser(), True
        mode = os.environ.get("HEALDA_AUTOTUNE", "").strip().lower()
        self.deterministic = mode in ("deterministic", "off", "0", "no", "false")


STATE = _State()
TUNERS: dict[str, Tuner] = {}


def configure(cache_dir: str | os.PathLike | None = None, save: bool | None = None,
              deterministic: bool | None = None) -> None:
    """Set the cache folder, whether new results are written, and deterministic mode."""
    with _LOCK:
        if cache_dir is not None:
            STATE.cache_dir = Path(cache_dir).expanduser()
            STATE.loaded = False
        if save is not None:
            STATE.save = save
        if deterministic is not None:
            STATE.deterministic = deterministic


@contextlib.contextmanager
def no_timing_unless_asked() -> Iterator[None]:
    """Within the block, kernels take a cached config or their default and time no candidate, unless
    ``HEALDA_AUTOTUNE`` is set (``on`` then tunes, as everywhere). For short inference runs, where timing and
    compiling every candidate costs more than the fastest config saves."""
    asked = os.environ.get("HEALDA_AUTOTUNE", "").strip() != ""
    with _LOCK:
        before = STATE.deterministic
        STATE.deterministic = before if asked else True
    try:
        yield
    finally:
        with _LOCK:
            STATE.deterministic = before


def cache_path() -> Path | None:
    """The cache file for this GPU, Triton version and kernel sources (None when no folder is set)."""
    if STATE.cache_dir is None:
        return None
    return STATE.cache_dir / f"healda-autotune-{gpu_tag()}-triton{_triton_version()}-{_source_hash()}.json"


def _header() -> dict:
    return {"format": FORMAT, "gpu": gpu_tag(), "triton": _triton_version(), "source": _source_hash()}


def _read(path: Path) -> dict[str, dict[str, dict]]:
    """Kernel name → key → config from ``path``; {} (with a warning) when unreadable or foreign."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        warnings.warn(f"autotune cache {path} is unreadable ({exc}); re-tuning", stacklevel=3)
        return {}
    head = _header()
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in head.items()) \
            or not isinstance(data.get("kernels"), dict):
        warnings.warn(f"autotune cache {path} belongs to another GPU, Triton or kernel version; re-tuning",
                      stacklevel=3)
        return {}
    out: dict[str, dict[str, dict]] = {}
    for name, entries in data["kernels"].items():
        if isinstance(entries, dict):
            out[name] = {k: v for k, v in entries.items() if isinstance(v, dict)}
    return out


def _load() -> None:
    if STATE.loaded:
        return
    STATE.loaded = True
    path = cache_path()
    if path is None:
        return
    for name, entries in _read(path).items():
        t = TUNERS.get(name)
        if t is None:
            continue
        for k, cfg in entries.items():
            if t.valid(cfg):
                t.cache.setdefault(k, cfg)
            else:
                warnings.warn(f"autotune cache {path}: ignoring an invalid {name} entry", stacklevel=2)


def save_cache() -> Path | None:
    """Write every tuned config to the cache file and return its path.

    Under an exclusive lock on ``<file>.lock`` (``flock``, so concurrent processes and ranks take turns) the file
    is re-read, this process's entries are merged into it, and the result replaces it atomically; no writer's
    entries are lost. Temporaries left by a writer killed mid-write are removed under the same lock.
    """
    path = cache_path()
    if path is None:
        return None
    with _LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(path.with_name(path.name + ".lock")):
            for stale in path.parent.glob(path.name + ".*.tmp"):  # only a dead writer leaves one outside the lock
                stale.unlink(missing_ok=True)
            merged = _read(path)
            for name, t in TUNERS.items():
                merged.setdefault(name, {}).update(t.cache)
            doc = dict(_header(), kernels=merged)
            fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(doc, f, indent=1, sort_keys=True)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
    return path


@contextlib.contextmanager
def _file_lock(lock: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock`` (created if absent), released when the block ends or the process dies."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def can_time(device: torch.device) -> bool:
    """Whether candidates can be timed here (a CUDA device, no interpreter, no graph capture)."""
    return (device.type == "cuda" and not _interpreting() and torch.cuda.is_available()
            and not torch.cuda.is_current_stream_capturing())


def num_sms(device: torch.device) -> int:
    """Streaming multiprocessors of ``device`` (persistent grids are sized by it); 2 off CUDA (interpreter)."""
    if device.type != "cuda":
        return 2
    return _cuda_sms(device.index if device.index is not None else torch.cuda.current_device())


@functools.lru_cache(maxsize=16)
def _cuda_sms(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def time_ms(fn: Callable[[], object], budget_ms: float = 40.0, rounds: int = 5) -> float:
    """Per-call time of ``fn`` in ms, as the autotuner compares candidates: one warm-up call, one timed call to
    size the rounds, then ``rounds`` rounds of back-to-back calls between two CUDA events (as many per round as
    fit ``budget_ms`` in all, 1 to 50), median over the rounds. Back to back, each call's host time overlaps
    the previous call's GPU work, so launch jitter on a busy host (0.1–0.3 ms per call on the H200 machine)
    does not decide between candidates a few per cent apart; single calls did (docs/design.md)."""
    fn()
    one = event_ms(fn)
    k = max(1, min(50, int(budget_ms / rounds / max(one, 1e-3))))
    times = []
    for _ in range(rounds):
        times.append(event_ms(lambda: [fn() for _ in range(k)]) / k)
    return statistics.median(times)


def event_ms(fn: Callable[[], object]) -> float:
    """One call of ``fn`` between two CUDA events on the current stream, in ms (waits for the end event)."""
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    fn()
    e.record()
    e.synchronize()
    return s.elapsed_time(e)


# Launch settings forced on every config of every kernel, e.g. {"num_warps": 4} (tests and launch-setting
# experiments set it). None: each kernel uses its own known-good launch setting (Tuner ``force``); {}: nothing is
# forced, every candidate is tried as listed.
OVERRIDE: dict[str, int] | None = None


@functools.lru_cache(maxsize=4096)
def _json_key(key: tuple) -> str:
    """The cache-file spelling of a bucket key (memoised: it is looked up on every kernel call)."""
    return json.dumps(list(key))


class Tuner:
    """Candidate configs of one kernel and the in-memory cache bucket-key → config."""

    def __init__(self, name: str, configs: list[dict], default: dict, force: dict | None = None):
        """``force``: launch settings applied to every candidate unless :data:`OVERRIDE` is set.
        Triton 3.6 on Hopper miscompiles some of these kernels at some warp counts (out-of-range shared-memory
        reads, then "illegal memory access": docs/design.md); ``force`` pins each kernel to a setting
        that ran clean and matched the PyTorch path there."""
        self.name, self.configs, self.default, self.force = name, configs, default, dict(force or {})
        self.cache: dict[str, dict] = {}
        self.fields = set(default)
        TUNERS[name] = self

    def valid(self, cfg: dict) -> bool:
        return set(cfg) == self.fields and all(isinstance(v, int) and not isinstance(v, bool) for v in cfg.values())

    def lookup(self, key: tuple) -> dict | None:
        _load()
        return self.cache.get(_json_key(key))

    def choose(self, key: tuple, run: Callable[[dict], object], device: torch.device) -> dict:
        """The config for ``key``: cached, else tuned by timing ``run(config)`` (when allowed), else default."""
        ov = {k: v for k, v in (self.force if OVERRIDE is None else OVERRIDE).items() if k in self.fields}
        hit = self.lookup(key)
        if hit is not None:
            return {**hit, **ov}
        cands = []
        for c in self.configs:
            c = {**c, **ov}
            if c not in cands:
                cands.append(c)
        if STATE.deterministic or len(cands) < 2 or not can_time(device):
            return {**self.default, **ov}
        t0 = time.perf_counter()
        best, best_ms = {**self.default, **ov}, math.inf
        for cfg in cands:
            try:
                ms = time_ms(lambda c=cfg: run(c), budget_ms=40.0)
            except Exception:  # noqa: BLE001 - e.g. out of shared memory/registers: skip the candidate
                continue
            if ms < best_ms:
                best, best_ms = cfg, ms
        STATE.tuned_s += time.perf_counter() - t0
        STATE.tuned_buckets += 1
        self.cache[_json_key(key)] = best
        if STATE.save and STATE.cache_dir is not None:
            try:
                save_cache()
            except OSError as exc:
                warnings.warn(f"could not write the autotune cache: {exc}", stacklevel=2)
        return best


def report() -> dict:
    """What this process tuned or loaded: per kernel, the bucket keys and configs."""
    return {"cache_file": str(cache_path()) if cache_path() else None, "deterministic": STATE.deterministic,
            "tuning_seconds": STATE.tuned_s, "tuned_buckets": STATE.tuned_buckets,
            "kernels": {n: dict(t.cache) for n, t in TUNERS.items()}}
