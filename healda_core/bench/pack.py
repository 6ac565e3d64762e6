"""``healda bench pack``: throughput and peak memory of observation packing on synthetic input.

Generates ``n`` synthetic raw observations in memory (a UFS-like mix: 2/3 microwave radiances on 4 sensors,
1/3 conventional t/q/u/v/ps with pressure only, so heights are derived), then times the pipeline stages of
``pack-obs`` after reading: QC + normalisation, framing + pixels + counting sort
(:func:`~healda_core.obs.pack.plan_pack`), and the column gathers streamed into the parallel-compressing
NetCDF writer (:func:`~healda_core.obs.packed_write.write_packed_columns`). Peak memory is the process's peak
resident set size (``resource.getrusage``), which includes the synthetic input itself.
"""

from __future__ import annotations

import os
import platform
import resource
import tempfile
import time

import numpy as np

from healda_core.obs.deflate import backend
from healda_core.obs.pack import column_sources, gather_columns, plan_pack
from healda_core.obs.packed_write import write_packed_columns
from healda_core.obs.qc import run_qc
from healda_core.obs.raw import COLUMNS, RawObs

T0 = 1704067200  # 2024-01-01T00Z
_CHUNK = 1 << 22


def _fill_chunk(cols: dict[str, np.ndarray], s: slice, rng: np.random.Generator) -> None:
    n = s.stop - s.start
    conv = rng.random(n) < 1 / 3
    sensor = np.where(conv, 6, rng.choice(np.array([0, 1, 2, 3], np.uint8), n))
    code = rng.choice(np.array([4, 5, 6, 7, 8], np.uint16), n)
    cols["sensor"][s] = sensor
    cols["channel"][s] = np.where(conv, code, rng.integers(1, 6, n))
    cols["time_ns"][s] = (T0 + rng.integers(-45 * 3600, 3 * 3600, n)) * 1_000_000_000
    cols["lat"][s] = rng.uniform(-90, 90, n)
    cols["lon"][s] = rng.uniform(0, 360, n)
    typical = np.array([0, 0, 0, 0, 1000.0, 0.005, 250.0, 5.0, -2.0], np.float32)
    cols["value"][s] = np.where(conv, typical[code], 230.0 + rng.standard_normal(n, np.float32) * 20)
    cols["platform"][s] = np.where(conv, -1, np.where(sensor == 0, 25, 15))
    for name in ("scan_angle", "sat_zenith", "solar_zenith"):
        cols[name][s] = np.where(conv, np.nan, rng.uniform(-50, 50, n).astype(np.float32))
    cols["pressure_hpa"][s] = np.where(conv, rng.uniform(100, 1000, n).astype(np.float32), np.nan)
    cols["height"][s] = np.nan
    cols["obs_type"][s] = np.where(conv, np.where(code >= 7, 220, 120), 0)


def synthetic_raw(n: int, seed: int = 0) -> RawObs:
    """``n`` synthetic raw observations around 2024-01-01T00Z (generated chunk-wise to bound memory)."""
    rng = np.random.default_rng(seed)
    cols = {name: np.empty(n, dtype=dtype) for name, dtype in COLUMNS.items()}
    for start in range(0, n, _CHUNK):
        _fill_chunk(cols, slice(start, min(n, start + _CHUNK)), rng)
    return RawObs(**cols)


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux


def bench_pack(n: int = 30_000_000, complevel: int = 1, write: bool = True, seed: int = 0) -> dict:
    """Run the benchmark once; returns one row of measurements (times in s, rates in obs/s, memory in GB).

    With ``write`` the stages are those of ``pack-obs``: QC, then framing + pixels + counting sort
    (``frame_sort_s``), then the column gathers streamed into the writer, which compresses chunks on every
    core while the next column is gathered (``gather_write_s``: gathers, compression and file write
    together). Without ``write`` the columns are only gathered in memory (``gather_s``).
    """
    t = time.perf_counter()
    raw = synthetic_raw(n, seed)
    t_gen = time.perf_counter() - t
    rss_input = _peak_rss_gb()
    t = time.perf_counter()
    qc = run_qc(raw)
    t_qc = time.perf_counter() - t
    t = time.perf_counter()
    plan, qc = plan_pack(raw, [T0], qc=qc)
    t_plan = time.perf_counter() - t
    size = 0
    t = time.perf_counter()
    if write:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bench.packed.nc")
            write_packed_columns(path, plan.header, {}, column_sources(raw, qc, plan, consume=True),
                                 complevel=complevel)
            t_rest = time.perf_counter() - t
            size = os.path.getsize(path)
    else:
        obs = dict(gather_columns(raw, qc, plan, consume=True))
        t_rest = time.perf_counter() - t
        del obs
    del raw, qc
    total = t_qc + t_plan + t_rest
    return {
        "bench": "pack", "n_obs": n, "n_packed": plan.header.n_obs, "complevel": complevel if write else None,
        "deflate": backend(complevel) if write else None,
        "generate_s": round(t_gen, 3), "qc_s": round(t_qc, 3), "frame_sort_s": round(t_plan, 3),
        ("gather_write_s" if write else "gather_s"): round(t_rest, 3), "total_s": round(total, 3),
        "obs_per_s_total": round(n / total),
        "peak_rss_gb": round(_peak_rss_gb(), 3), "input_rss_gb": round(rss_input, 3),
        "file_mb": round(size / 1e6, 1), "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "machine": platform.machine(), "numpy": np.__version__,
    }


def bench_read_parquet(n: int = 10_000_000, row_group_rows: int = 1 << 20, seed: int = 0) -> dict:
    """Parquet reader throughput (obs/s) on a synthetic ``n``-row file in the UFS combined schema.

    The file is written one row group at a time (so generating it stays small), then read back with
    :func:`~healda_core.obs.readers.read_obs_file`. ``peak_rss_gb`` is the process peak, dominated by the
    decoded columns (``columns_gb``, what any reader must return) plus one record batch in flight.
    """
    import pyarrow.parquet as pq

    from healda_core.obs.readers import read_obs_file
    from healda_core.obs.readers.parquet import write_parquet

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.parquet")
        writer = None
        for i, start in enumerate(range(0, n, row_group_rows)):
            part = os.path.join(tmp, "part.parquet")
            write_parquet(part, synthetic_raw(min(row_group_rows, n - start), seed + i), row_group_rows)
            table = pq.read_table(part)
            writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=row_group_rows)
            del table
        writer.close()
        size = os.path.getsize(path)
        rss_before = _peak_rss_gb()
        t = time.perf_counter()
        raw, _ = read_obs_file(path)
        t_read = time.perf_counter() - t
    cols_gb = sum(getattr(raw, name).nbytes for name in COLUMNS) / 1e9
    return {
        "bench": "read-parquet", "n_obs": len(raw), "row_group_rows": row_group_rows, "read_s": round(t_read, 3),
        "obs_per_s": round(n / t_read), "file_mb": round(size / 1e6, 1), "columns_gb": round(cols_gb, 3),
        "peak_rss_gb": round(_peak_rss_gb(), 3), "rss_before_read_gb": round(rss_before, 3),
        "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "machine": platform.machine(),
    }
