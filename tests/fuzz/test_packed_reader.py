"""Fuzzing the packed-observation reader (and the static-file reader) through ``assimilate`` (a micro model):
a damaged packed or static file is either assimilated or refused with one ``error:`` line (exit 3); never a traceback, analysis file or runaway memory.

Mutations: truncations, bit flips and overwrites of the bytes; retyped variables, absurd attributes and
global attributes (the header's level, frame count, step, counts, conventions), extreme values, resized
dimensions (0 … 2e9 claimed observations) and dropped variables.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import netCDF4
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from healda_cli.main import app
from tests.cli.synthetic import write_latlon_invariants, write_synthetic_raw
from tests.fuzz.harness import (
    byte_mutations,
    check_outcome,
    fuzz_settings,
    mutate_bytes,
    mutate_nc,
    nc_dimensions,
    nc_mutations,
    nc_variables,
    run_cli,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("packed")
    raw = write_synthetic_raw(d / "raw.nc", n_sat=300, n_conv=100)
    for args in (("pack-obs", raw, "--time", "2024-01-02T00Z", "--level", 1, "-o", d / "obs.nc"),
                 ("make-static", write_latlon_invariants(d / "inv.nc", deg=10.0), "--level", 2, "-o", d / "st.nc")):
        res = runner.invoke(app, [str(a) for a in args])
        assert res.exit_code == 0, res.output
    return {"packed": d / "obs.nc", "static": d / "st.nc", "ckpt": _micro_checkpoint(d / "micro.safetensors")}


def _micro_checkpoint(path: Path) -> Path:
    """``healda-tiny``'s grid and conventions with the smallest widths: each forward is a few milliseconds."""
    import torch

    from healda_core.checkpoint.convert import LoadedCheckpoint, write_safetensors
    from healda_core.checkpoint.format import default_conventions
    from healda_core.model.healda import HealDA
    from healda_core.presets import preset_config

    cfg = {**preset_config("healda-tiny"), "hidden_size": 16, "num_layers": 1, "num_heads": 2,
           "condition_embed_dim": 8, "noise_channels": 8, "pixel_attn_n_q_heads": 2, "pixel_attn_n_kv_heads": 1,
           "pixel_attn_head_dim": 8, "obs_token_dim": 8, "obs_film_hidden_dim": 8}
    torch.manual_seed(0)
    sd = HealDA(**cfg).state_dict()
    write_safetensors(LoadedCheckpoint(state_dict=sd, config=cfg, conventions=default_conventions(cfg),
                                       source_format="healda-init", path=str(path)), path)
    return path


def _assimilate(work: dict, packed: Path, what: str, out_dir: Path | None = None) -> int:
    out = (out_dir or packed.parent) / "out" / "analysis.nc"
    out.parent.mkdir(exist_ok=True)
    res = run_cli("assimilate", packed, "--ckpt", work["ckpt"], "--static", work["static"], "-o", out)
    code = check_outcome(res, out, what)
    assert code == 3 or out.exists(), f"{what}: exit 0 without an analysis file"
    return code


def test_seed_packed_file_assimilates(work, tmp_path):
    packed = tmp_path / "obs.nc"
    packed.write_bytes(work["packed"].read_bytes())
    assert _assimilate(work, packed, "seed") == 0


def test_byte_mutations(work):
    data = work["packed"].read_bytes()

    @fuzz_settings(20)
    @given(m=byte_mutations(len(data)))
    def case(m):
        with tempfile.TemporaryDirectory() as d:
            packed = Path(d) / "obs.nc"
            packed.write_bytes(mutate_bytes(data, m))
            _assimilate(work, packed, f"packed {m}")

    case()


def test_structure_mutations(work):
    seed = work["packed"]
    with netCDF4.Dataset(seed) as ds:
        global_attrs = list(ds.ncattrs())

    @fuzz_settings(35)
    @given(m=nc_mutations(nc_variables(seed), nc_dimensions(seed), global_attrs))
    def case(m):
        with tempfile.TemporaryDirectory() as d:
            packed = Path(d) / "obs.nc"
            mutate_nc(seed, packed, m)
            _assimilate(work, packed, f"packed {m}")

    case()


def test_static_file_mutations(work):
    """The static file (orography, land fraction) is read by the same command: damaged ones are refused too."""
    seed = work["static"]
    with netCDF4.Dataset(seed) as ds:
        global_attrs = list(ds.ncattrs())
    data = seed.read_bytes()

    @fuzz_settings(20)
    @given(m=st.one_of(byte_mutations(len(data)), nc_mutations(nc_variables(seed), nc_dimensions(seed),
                                                                global_attrs)))
    def case(m):
        with tempfile.TemporaryDirectory() as d:
            static = Path(d) / "st.nc"
            if m[0] in ("truncate", "flip", "overwrite"):
                static.write_bytes(mutate_bytes(data, m))
            else:
                mutate_nc(seed, static, m)
            _assimilate({**work, "static": static}, work["packed"], f"static {m}", out_dir=Path(d))

    case()
