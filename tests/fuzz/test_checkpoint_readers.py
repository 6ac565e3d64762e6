"""Fuzzing the checkpoint readers: ``convert-ckpt`` on damaged checkpoints of every accepted format, and
``train --resume`` on damaged training state. Each case converts (exit 0, output written) or is refused with
one ``error:`` line (exit 3); never a traceback, output file, unpickled object or runaway memory.

Seeds: healda safetensors, PhysicsNeMo ``.mdlus`` (zip and legacy tar), NVlabs ``.checkpoint``, ``torch.save``
state_dicts (zip and legacy layout), and a training run's ``model.safetensors``, ``train_state.pt`` and
``rng_rank0.pt``. Mutations: truncations, bit flips, overwrites; and for safetensors the JSON header itself:
configuration values replaced by absurd ones (negative, huge, fractional, text, null), tensor entries with
other dtypes, shapes or offsets, header entries removed.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from healda_cli.main import app
from tests.fuzz.harness import byte_mutations, check_outcome, fuzz_settings, mutate_bytes, run_cli
from tests.train.test_resume_refusals import TOML

runner = CliRunner()


def _ok(*args: object) -> None:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def seeds(tmp_path_factory, fixture_small) -> dict[str, tuple[Path, list[str]]]:
    """Format name → (seed file, extra convert-ckpt arguments)."""
    d = tmp_path_factory.mktemp("ckpt-seeds")
    sd, cfg = fixture_small["state_dict"], fixture_small["config"]
    config = ["--config", json.dumps(cfg)]
    _ok("init-ckpt", "--preset", "healda-tiny", "-o", d / "tiny.safetensors")
    _ok("convert-ckpt", d / "tiny.safetensors", "--to", "mdlus", "-o", d / "tiny.mdlus")
    torch.save(sd, d / "zip.pt")
    torch.save(sd, d / "legacy.pt", _use_new_zipfile_serialization=False)
    buf = io.BytesIO()
    torch.save(sd, buf)
    with zipfile.ZipFile(d / "run.checkpoint", "w") as zf:
        zf.writestr("net_state.pth", buf.getvalue())
        zf.writestr("model.json", json.dumps(cfg))
    with tarfile.open(d / "old.mdlus", "w") as tf:
        for name, data in (("model.pt", buf.getvalue()),
                           ("args.json", json.dumps({"__name__": "VideoHealDA", "__args__": cfg}).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return {"safetensors": (d / "tiny.safetensors", []), "mdlus": (d / "tiny.mdlus", []),
            "nvlabs": (d / "run.checkpoint", []), "tar-mdlus": (d / "old.mdlus", []),
            "pt-zip": (d / "zip.pt", config), "pt-legacy": (d / "legacy.pt", config)}


def _convert(src: Path, extra: list[str], what: str) -> int:
    out = src.parent / "out" / "converted.safetensors"
    out.parent.mkdir(exist_ok=True)
    res = run_cli("convert-ckpt", src, "-o", out, *extra)
    code = check_outcome(res, out, what)
    assert code == 3 or out.exists(), f"{what}: exit 0 without an output"
    return code


FORMATS = ["safetensors", "mdlus", "nvlabs", "tar-mdlus", "pt-zip", "pt-legacy"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_seed_checkpoints_convert(seeds, fmt, tmp_path):
    src, extra = seeds[fmt]
    copy = tmp_path / src.name
    shutil.copy(src, copy)
    assert _convert(copy, extra, fmt) == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_byte_mutations(seeds, fmt):
    src, extra = seeds[fmt]
    data = src.read_bytes()

    @fuzz_settings(10)
    @given(m=byte_mutations(len(data)))
    def case(m):
        with tempfile.TemporaryDirectory() as d:
            bad = Path(d) / src.name
            bad.write_bytes(mutate_bytes(data, m))
            _convert(bad, extra, f"{fmt} {m}")

    case()


absurd = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 1, 3, 7, 10**6, 10**9, 2**31, 2**63]),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8), st.none(), st.booleans(),
                   st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                            max_size=2))


def _split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _join(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@st.composite
def header_mutations(draw, header: dict) -> tuple:
    config = json.loads(header["__metadata__"]["config"])
    tensors = [k for k in header if k != "__metadata__"]
    kind = draw(st.sampled_from(["config", "config", "tensor", "metadata", "conventions"]))
    if kind == "config":
        return ("config", draw(st.sampled_from(sorted(config))), draw(absurd))
    if kind == "tensor":
        return ("tensor", draw(st.sampled_from(tensors)), draw(st.sampled_from(["dtype", "shape", "data_offsets"])),
                draw(st.one_of(st.sampled_from(["F16", "F64", "I64", "BOOL", "U8", "BF16"]),
                               st.lists(st.integers(-2, 2**40), max_size=4), absurd)))
    if kind == "conventions":
        return ("conventions", draw(st.one_of(st.text(max_size=12), st.just("[]"), st.just('{"level_in": "x"}'))))
    return ("metadata", draw(st.sampled_from(sorted(header["__metadata__"]))), draw(st.one_of(st.none(),
                                                                                              st.text(max_size=12))))


def _apply_header(header: dict, m: tuple) -> dict:
    h = json.loads(json.dumps(header))
    md = h["__metadata__"]
    if m[0] == "config":
        cfg = json.loads(md["config"])
        cfg[m[1]] = m[2]
        md["config"] = json.dumps(cfg)
    elif m[0] == "tensor":
        h[m[1]][m[2]] = m[3]
    elif m[0] == "conventions":
        md["conventions"] = m[1]
    elif m[2] is None:
        md.pop(m[1])
    else:
        md[m[1]] = m[2]
    return h


def test_safetensors_header_mutations(seeds):
    src, _ = seeds["safetensors"]
    header, body = _split(src.read_bytes())

    @fuzz_settings(30)
    @given(m=header_mutations(header))
    def case(m):
        with tempfile.TemporaryDirectory() as d:
            bad = Path(d) / "tiny.safetensors"
            bad.write_bytes(_join(_apply_header(header, m), body))
            _convert(bad, [], f"header {m}")

    case()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-run")
    (root / "run.toml").write_text(TOML)
    res = runner.invoke(app, ["train", "--config", str(root / "run.toml"), "--out", str(root / "a"),
                              "--max-steps", "2"])
    assert res.exit_code == 0, res.output
    return root


@pytest.mark.parametrize("name", ["train_state.pt", "rng_rank0.pt", "model.safetensors"])
def test_training_state_mutations(run_dir, name):
    data = (run_dir / "a" / "checkpoints" / "step_00000002" / name).read_bytes()

    @fuzz_settings(6)
    @given(m=byte_mutations(len(data)))
    def case(m):
        with tempfile.TemporaryDirectory() as d:
            run = Path(d) / "a"
            shutil.copytree(run_dir / "a", run)
            ckpt = run / "checkpoints" / "step_00000002"
            (ckpt / name).write_bytes(mutate_bytes(data, m))
            res = run_cli("train", "--config", run_dir / "run.toml", "--out", run, "--max-steps", "2", "--resume")
            check_outcome(res, None, f"{name} {m}")
            assert sorted(p.name for p in ckpt.parent.iterdir()) == ["latest", "step_00000002"]

    case()
