"""Fuzzing the observation readers through ``pack-obs``: every damaged file is packed with its bad rows
counted as drops, or refused with one ``error:`` line (exit 3); never a traceback, output file or runaway memory.

Seeds: one file per reader and layout (canonical CF point, IODA radiance and conventional, GSI conventional
and radiance, parquet, BUFR TEMP and aircraft). Mutations: truncations, bit flips and overwrites of the bytes;
through a NetCDF copy, variables retyped (integers, floats, strings), absurd attributes (units, fill values,
flag tables), extreme values (NaN, inf, int64 limits, sentinels), dimensions resized (0 … 2e9 claimed rows),
variables and global attributes removed or replaced; through a parquet copy, columns dropped, renamed, cast to
other types or filled with extreme values and nulls.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import netCDF4
import pytest
from hypothesis import given

from healda_core.obs.readers import write_parquet
from tests.cli.synthetic import synthetic_raw, write_synthetic_raw
from tests.fuzz.harness import (
    byte_mutations,
    check_outcome,
    check_pack_accounting,
    fuzz_settings,
    mutate_bytes,
    mutate_nc,
    mutate_parquet,
    nc_dimensions,
    nc_mutations,
    nc_variables,
    parquet_mutations,
    run_cli,
)
from tests.obs.test_nnja import _write_table as write_nnja_table
from tests.obs.test_readers import write_gsi_conv_uv, write_gsi_radiance, write_ioda_conv, write_ioda_radiance

SEEDS = {
    "canonical": ("raw.nc", lambda p: write_synthetic_raw(p, n_sat=30, n_conv=20)),
    "ioda-radiance": ("atms_n20.nc", write_ioda_radiance),
    "ioda-conv": ("sondes.nc", write_ioda_conv),
    "gsi-conv": ("diag_conv_uv_ges.2024010100_control.nc4", write_gsi_conv_uv),
    "gsi-radiance": ("diag_amsua_n19_ges.2024010106_control.nc4", write_gsi_radiance),
}
BINARY_SEEDS = {
    "parquet": ("obs.parquet", lambda p: write_parquet(p, synthetic_raw(n_sat=30, n_conv=20), row_group_rows=20)),
    "nnja-prepbufr": ("gdas.20240101.t00z.prepbufr.nr.parquet", write_nnja_table),
    "bufr-temp": ("temp.bufr", lambda p: p.write_bytes((BUFR_DATA / "temp_sample.bufr").read_bytes())),
    "bufr-aircraft": ("aircraft.bufr", lambda p: p.write_bytes((BUFR_DATA / "aircraft_small.bufr").read_bytes())),
}
BUFR_DATA = Path(__file__).resolve().parents[1] / "data" / "bufr"
BYTE_EXAMPLES = 15
NC_EXAMPLES = 25


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seeds")
    out = {}
    for fmt, (name, write) in {**SEEDS, **BINARY_SEEDS}.items():
        (root / fmt).mkdir()
        out[fmt] = root / fmt / name
        write(out[fmt])
    return out


def _pack(src: Path, what: str) -> None:
    out = src.parent / "out" / "packed.nc"
    out.parent.mkdir(exist_ok=True)
    res = run_cli("pack-obs", src, "-o", out, "--json")
    if check_outcome(res, out, what) == 0:
        check_pack_accounting(res, out, what)


@pytest.mark.parametrize("fmt", [*SEEDS, *BINARY_SEEDS])
def test_seed_files_pack(seeds, fmt, tmp_path):
    src = tmp_path / seeds[fmt].name
    src.write_bytes(seeds[fmt].read_bytes())
    out = tmp_path / "out" / "packed.nc"
    out.parent.mkdir()
    res = run_cli("pack-obs", src, "-o", out, "--json")
    assert check_outcome(res, out, fmt) == 0, res.output  # the unmutated seed is a working baseline
    check_pack_accounting(res, out, fmt)


@pytest.mark.parametrize("fmt", [*SEEDS, *BINARY_SEEDS])
def test_byte_mutations(seeds, fmt):
    data = seeds[fmt].read_bytes()

    @fuzz_settings(BYTE_EXAMPLES)
    @given(m=byte_mutations(len(data)))
    def case(m):
        with tempfile.TemporaryDirectory() as d:
            src = Path(d) / seeds[fmt].name
            src.write_bytes(mutate_bytes(data, m))
            _pack(src, f"{fmt} {m}")

    case()


@pytest.mark.parametrize("fmt", list(SEEDS))
def test_structure_mutations(seeds, fmt):
    seed = seeds[fmt]
    with netCDF4.Dataset(seed) as ds:
        global_attrs = list(ds.ncattrs())

    @fuzz_settings(NC_EXAMPLES)
    @given(m=nc_mutations(nc_variables(seed), nc_dimensions(seed), global_attrs))
    def case(m):
        with tempfile.TemporaryDirectory() as d:
            src = Path(d) / seed.name
            mutate_nc(seed, src, m)
            _pack(src, f"{fmt} {m}")

    case()


@pytest.mark.parametrize("fmt", ["parquet", "nnja-prepbufr"])
def test_parquet_table_mutations(seeds, fmt):
    import pyarrow.parquet as pq

    seed = seeds[fmt]

    @fuzz_settings(NC_EXAMPLES)
    @given(m=parquet_mutations(pq.read_schema(seed).names))
    def case(m):
        with tempfile.TemporaryDirectory() as d:
            src = Path(d) / seed.name
            mutate_parquet(seed, src, m)
            _pack(src, f"{fmt} {m}")

    case()
