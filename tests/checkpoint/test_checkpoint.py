"""Checkpoint format, conversion and refusal of bad checkpoints (``convert-ckpt``, ``init-ckpt``, ``load_model``)."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core import load_model
from healda_core.checkpoint import read_checkpoint, read_header, weights_sha256
from healda_core.checkpoint.convert import expected_freqs
from healda_core.checkpoint.format import FREQS_KEY
from healda_core.errors import CheckpointError
from tests.conftest import shared_path
from tests.model.helpers import run_fixture

runner = CliRunner()


def _cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _assert_refused(res, out: Path | None = None, *needles: str) -> str:
    assert res.exit_code == 3, res.output
    assert res.stdout == ""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    for n in needles:
        assert n in lines[0], lines[0]
    if out is not None:
        assert not out.exists()
        assert not list(out.parent.glob(f".{out.name}.tmp*"))
    return lines[0]


@pytest.fixture(scope="module")
def small_st(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ck") / "small.safetensors"
    res = _cli("convert-ckpt", shared_path("fixtures", "small.mdlus"), "-o", out)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == str(out)
    return out


def test_mdlus_to_safetensors_reproduces_reference_output(small_st, fixture_small):
    model = load_model(small_st)
    out = run_fixture(model, fixture_small)
    assert (out - fixture_small["output"]).abs().max().item() < 1e-5
    # the .mdlus itself loads too, and the header records the source and conventions
    assert (run_fixture(load_model(shared_path("fixtures", "small.mdlus")), fixture_small)
            - fixture_small["output"]).abs().max().item() < 1e-5
    h = read_header(small_st)
    assert h.config == fixture_small["config"]
    assert h.extra["source"] == "physicsnemo-mdlus"
    assert h.conventions["pixel_order"] == "earth2grid_healpix_pad_xy" and h.conventions["level_model"] == 1
    assert model.checkpoint_info["weights_sha256"] == h.weights_sha256


def test_safetensors_mdlus_safetensors_is_bit_exact(small_st, tmp_path):
    mdlus, back = tmp_path / "m.mdlus", tmp_path / "back.safetensors"
    assert _cli("convert-ckpt", small_st, "--to", "mdlus", "-o", mdlus).exit_code == 0
    with zipfile.ZipFile(mdlus) as zf:
        args = json.loads(zf.read("args.json"))
        assert json.loads(zf.read("metadata.json"))["physicsnemo_version"]
        sd_mdlus = torch.load(io.BytesIO(zf.read("model.pt")), weights_only=True)
    assert args["__name__"] == "VideoHealDA"
    assert args["__module__"] == "physicsnemo.experimental.models.healda.video_healda"
    assert args["__args__"] == read_header(small_st).config
    assert _cli("convert-ckpt", mdlus, "-o", back).exit_code == 0
    a, b = read_checkpoint(small_st).state_dict, read_checkpoint(back).state_dict
    assert list(a) == list(b) == list(sd_mdlus)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k].view(torch.uint8), b[k].view(torch.uint8)), k
    assert read_header(small_st).weights_sha256 == read_header(back).weights_sha256


def test_info_json_and_bf16(small_st, tmp_path):
    res = _cli("convert-ckpt", small_st, "--info", "--json")
    assert res.exit_code == 0
    d = json.loads(res.stdout)
    assert d["parameters"] == 361_763 and d["config"]["hidden_size"] == 64 and d["dtype"] == "float32"
    out = tmp_path / "bf16.safetensors"
    assert _cli("convert-ckpt", small_st, "--dtype", "bf16", "-o", out).exit_code == 0
    ck = read_checkpoint(out)
    assert ck.dtype == "bfloat16" and ck.state_dict[FREQS_KEY].dtype == torch.float32


def test_plain_state_dict_with_prefixes_needs_config(fixture_small, tmp_path):
    pt = tmp_path / "w.pt"
    torch.save({"model": {f"module._orig_mod.{k}": v for k, v in fixture_small["state_dict"].items()}}, pt)
    out = tmp_path / "w.safetensors"
    _assert_refused(_cli("convert-ckpt", pt, "-o", out), out, "--config")
    cfg = tmp_path / "args.json"
    cfg.write_text(json.dumps({"__name__": "VideoHealDA", "__args__": fixture_small["config"]}))
    res = _cli("convert-ckpt", pt, "--config", cfg, "-o", out)
    assert res.exit_code == 0, res.output
    a = read_checkpoint(out).state_dict
    assert all(torch.equal(a[k], v) for k, v in fixture_small["state_dict"].items())


def test_nvlabs_checkpoint_zip(fixture_small, tmp_path):
    ck = tmp_path / "run.checkpoint"
    buf = io.BytesIO()
    torch.save(fixture_small["state_dict"], buf)
    with zipfile.ZipFile(ck, "w") as zf:
        zf.writestr("net_state.pth", buf.getvalue())
        zf.writestr("loop.json", json.dumps({"model_config": json.dumps(fixture_small["config"]), "lr": 1e-4}))
        zf.writestr("metadata.json", json.dumps({"version": 1}))
    ckpt = read_checkpoint(ck)
    assert ckpt.source_format == "nvlabs-checkpoint" and ckpt.config == fixture_small["config"]


def test_legacy_tar_mdlus(fixture_small, tmp_path):
    tar = tmp_path / "old.mdlus"
    buf = io.BytesIO()
    torch.save(fixture_small["state_dict"], buf)
    with tarfile.open(tar, "w") as tf:
        for name, data in (("model.pt", buf.getvalue()),
                           ("args.json", json.dumps({"__name__": "VideoHealDA",
                                                     "__args__": fixture_small["config"]}).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    assert read_checkpoint(tar).source_format == "physicsnemo-mdlus-tar"


class Evil:  # a custom class: unpickling it would import and run project code
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_bearing_checkpoint_refused(fixture_small, tmp_path):
    pt = tmp_path / "evil.pt"
    sd = dict(fixture_small["state_dict"])
    sd["extra"] = Evil()
    torch.save(sd, pt)
    out = tmp_path / "o.safetensors"
    cfg = json.dumps(fixture_small["config"])
    _assert_refused(_cli("convert-ckpt", pt, "--config", cfg, "-o", out), out, "pickled objects", "weights_only")
    # a raw pickle (not a torch file) is refused too
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"a": Evil()}))
    _assert_refused(_cli("convert-ckpt", raw, "--config", cfg, "-o", out), out)
    with pytest.raises(CheckpointError):
        load_model(pt, config=fixture_small["config"])


def test_truncated_and_corrupted_refused(small_st, tmp_path):
    data = small_st.read_bytes()
    out = tmp_path / "o.mdlus"
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(data[: len(data) // 2])
    _assert_refused(_cli("convert-ckpt", trunc, "--to", "mdlus", "-o", out), out, "truncated")
    corrupt = tmp_path / "corrupt.safetensors"
    bad = bytearray(data)
    bad[len(bad) - 1000] ^= 0xFF  # one flipped byte in the weights
    corrupt.write_bytes(bytes(bad))
    _assert_refused(_cli("convert-ckpt", corrupt, "--to", "mdlus", "-o", out), out, "hash mismatch")
    mdlus = shared_path("fixtures", "small.mdlus").read_bytes()
    tz = tmp_path / "trunc.mdlus"
    tz.write_bytes(mdlus[: len(mdlus) - 5000])
    _assert_refused(_cli("convert-ckpt", tz, "-o", out.with_suffix(".safetensors")), out.with_suffix(".safetensors"))
    cz = tmp_path / "corrupt.mdlus"
    badz = bytearray(mdlus)
    badz[len(badz) // 2] ^= 0xFF
    cz.write_bytes(bytes(badz))
    _assert_refused(_cli("convert-ckpt", cz, "-o", out.with_suffix(".safetensors")), out.with_suffix(".safetensors"),
                    "CRC")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world" * 10)
    _assert_refused(_cli("convert-ckpt", junk, "-o", out), out)


def test_mismatched_checkpoints_refused(fixture_small, tmp_path):
    sd = dict(fixture_small["state_dict"])
    cfg = fixture_small["config"]
    out = tmp_path / "o.safetensors"

    def save(d: dict, name: str, config: dict = cfg) -> Path:
        p = tmp_path / name
        torch.save(d, p)
        return p

    p = save({**sd, "dit.extra.weight": torch.zeros(2)}, "unknown.pt")
    _assert_refused(_cli("convert-ckpt", p, "--config", json.dumps(cfg), "-o", out), out, "unexpected keys",
                    "dit.extra.weight")
    d = dict(sd)
    d.pop("dit.blocks.1.linear.layers.0.weight")
    p = save(d, "missing.pt")
    _assert_refused(_cli("convert-ckpt", p, "--config", json.dumps(cfg), "-o", out), out, "missing keys",
                    "dit.blocks.1.linear.layers.0.weight")
    p = save(sd, "ok.pt")
    _assert_refused(_cli("convert-ckpt", p, "--config", json.dumps({**cfg, "hidden_size": 128}), "-o", out), out,
                    "does not match the tensors", "dit.tokenizer.pos_embed", "hidden_size")
    _assert_refused(_cli("convert-ckpt", p, "--config", json.dumps({**cfg, "bogus": 1}), "-o", out), out, "bogus")
    d = dict(sd)
    d[FREQS_KEY] = d[FREQS_KEY] * 2
    p = save(d, "freqs.pt")
    _assert_refused(_cli("convert-ckpt", p, "--config", json.dumps(cfg), "-o", out), out, "map_noise.freqs")
    # freqs absent: added from the formula
    d.pop(FREQS_KEY)
    p = save(d, "nofreqs.pt")
    assert _cli("convert-ckpt", p, "--config", json.dumps(cfg), "-o", out).exit_code == 0
    assert torch.equal(read_checkpoint(out).state_dict[FREQS_KEY], expected_freqs(cfg["noise_channels"]))


def test_existing_output_needs_overwrite(small_st, tmp_path):
    out = tmp_path / "x.mdlus"
    out.write_text("keep")
    res = _cli("convert-ckpt", small_st, "--to", "mdlus", "-o", out)
    assert res.exit_code == 2 and out.read_text() == "keep"
    assert _cli("convert-ckpt", small_st, "--to", "mdlus", "-o", out, "-O").exit_code == 0


def test_init_ckpt_tiny_is_deterministic_and_loads(tmp_path):
    a, b, c = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "c.safetensors"
    for p, seed in ((a, 1), (b, 1), (c, 2)):
        res = _cli("init-ckpt", "--preset", "healda-tiny", "--seed", seed, "-o", p)
        assert res.exit_code == 0, res.output
    ha, hb, hc = read_header(a), read_header(b), read_header(c)
    assert ha.weights_sha256 == hb.weights_sha256 != hc.weights_sha256
    assert ha.extra["preset"] == "healda-tiny" and ha.config["out_channels"] == 74
    assert ha.conventions["metadata_features"] == "healda_features_v2"
    model = load_model(a)
    assert weights_sha256(model.state_dict()) == ha.weights_sha256
    res = _cli("init-ckpt", "--list", "--json")
    rows = {r["preset"]: r for r in json.loads(res.stdout)}
    assert rows["healda-v2"]["parameters"] == 1_506_070_474
    _ = _cli("init-ckpt", "--preset", "nope", "-o", tmp_path / "n.safetensors")
    assert _.exit_code == 2
    assert "unknown preset 'nope'" in _.output and not (tmp_path / "n.safetensors").exists()
    res = _cli("init-ckpt", "--preset", "healda-tiny", "--dtype", "fp16", "-o", tmp_path / "d.safetensors")
    assert res.exit_code == 2 and "--dtype" in res.output and not (tmp_path / "d.safetensors").exists()
