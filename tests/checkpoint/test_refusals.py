"""Hostile and broken checkpoints: absurd header configurations, missing hashes, legacy files, odd dtypes.

Each test reruns a probe: the file is refused with exit 3 and one ``error:`` line naming the problem (or, for
the legacy torch.save layout, read), never a traceback, never an output file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.checkpoint import read_checkpoint, read_header, weights_sha256
from healda_core.errors import CheckpointError

runner = CliRunner()


def _cli(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def refused(res, *needles: str, out: Path | None = None) -> str:
    """Exit 3, one ``error:`` line holding every needle, no traceback, nothing on stdout, no output file."""
    assert res.exit_code == 3, res.output
    assert res.stdout == ""
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert "Traceback" not in res.output
    for n in needles:
        assert n in errors[0], errors[0]
    if out is not None:
        assert not out.exists()
        assert not list(out.parent.glob(f".{out.name}*"))
    return errors[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    assert _cli("init-ckpt", "--preset", "healda-tiny", "-o", out).exit_code == 0
    return out


def rewrite(src: Path, dst: Path, config: dict | None = None, tensors=None, **metadata: str | None) -> Path:
    """Copy a healda safetensors file with header entries replaced (``None`` removes one), the config keys in
    ``config`` changed, and ``tensors`` (a function of the state_dict) applied; the hash is left as it was."""
    with safe_open(str(src), "pt") as f:
        md = dict(f.metadata())
        sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iteration
    if config:
        md["config"] = json.dumps({**json.loads(md["config"]), **config})
    for k, v in metadata.items():
        if v is None:
            md.pop(k, None)
        else:
            md[k] = v
    save_file(tensors(sd) if tensors else sd, str(dst), metadata=md)
    return dst


@pytest.mark.parametrize(("change", "needle"), [
    ({"hidden_size": -64}, "hidden_size=-64 is outside"),
    ({"hidden_size": 1e9}, "hidden_size=1000000000.0 must be an integer"),
    ({"num_heads": 0}, "num_heads=0 is outside"),
    ({"num_layers": 1e6}, "num_layers=1000000.0 must be an integer"),
    ({"num_layers": 1_000_000}, "num_layers=1000000 is outside"),
    ({"num_layers": 100}, "num_layers=100 but the tensors hold 2 blocks"),
    ({"hidden_size": 96, "num_heads": 2}, "dit.tokenizer.pos_embed has shape (48, 64)"),
    ({"hidden_size": 66, "num_heads": 2}, "even quotient"),
    ({"pixel_attn_n_kv_heads": 3}, "divisible by pixel_attn_n_kv_heads=3"),
    ({"qk_norm_type": "Evil"}, "qk_norm_type='Evil'"),
    ({"level_model": 3}, "level_model=3 must not exceed level_in=2"),
    ({"mlp_ratio": float("nan")}, "mlp_ratio=nan must be a finite number"),
    ({"use_rope": "yes"}, "use_rope='yes' must be true or false"),
])
def test_absurd_header_configuration_refused_before_building(tiny, tmp_path, change, needle):
    bad = rewrite(tiny, tmp_path / "bad.safetensors", config=change)
    out = tmp_path / "o.safetensors"
    refused(_cli("convert-ckpt", bad, "-o", out), needle, out=out)
    refused(_cli("convert-ckpt", bad, "--info"), needle)
    # assimilate reads the checkpoint before anything else it is given
    packed, static = tmp_path / "p.nc", tmp_path / "s.nc"
    packed.write_bytes(b"")
    static.write_bytes(b"")
    an = tmp_path / "an.nc"
    refused(_cli("assimilate", packed, "--ckpt", bad, "--static", static, "-o", an), needle, out=an)


def test_config_given_on_the_command_line_is_checked_too(tiny, tmp_path):
    out = tmp_path / "o.safetensors"
    refused(_cli("convert-ckpt", tiny, "--config", json.dumps({"num_heads": 0}), "-o", out), "num_heads=0", out=out)


def test_missing_weights_hash_is_refused_unless_verification_is_skipped(tiny, tmp_path):
    def tamper(sd):
        sd = dict(sd)
        k = "dit.tokenizer.conv.bias"
        sd[k] = sd[k] + 1.0
        return sd

    for i, md in enumerate(({"weights_sha256": ""}, {"weights_sha256": None})):
        bad = rewrite(tiny, tmp_path / f"nohash{i}.safetensors", tensors=tamper, **md)
        out = tmp_path / f"o{i}.safetensors"
        refused(_cli("convert-ckpt", bad, "-o", out), "no weights_sha256", "--skip-hash-check", out=out)
        with pytest.raises(CheckpointError, match="no weights_sha256"):
            read_checkpoint(bad)
        res = _cli("convert-ckpt", bad, "--skip-hash-check", "-o", out)
        assert res.exit_code == 0, res.output
        assert "not verified" in res.stderr
        ck = read_checkpoint(out)  # the converted file carries a fresh hash over the data as read
        assert ck.hash_verified and read_header(out).weights_sha256 == weights_sha256(ck.state_dict)
        assert torch.equal(ck.state_dict["dit.tokenizer.conv.bias"], tamper(read_checkpoint(tiny).state_dict)[
            "dit.tokenizer.conv.bias"])
    assert read_checkpoint(tiny).hash_verified
    assert not read_checkpoint(tiny, verify=False).hash_verified


def test_assimilate_refuses_a_missing_hash_and_names_the_option(tiny, tmp_path):
    bad = rewrite(tiny, tmp_path / "nohash.safetensors", weights_sha256="")
    packed, static = tmp_path / "p.nc", tmp_path / "s.nc"
    packed.write_bytes(b"")
    static.write_bytes(b"")
    an = tmp_path / "an.nc"
    refused(_cli("assimilate", packed, "--ckpt", bad, "--static", static, "-o", an), "no weights_sha256",
            "--skip-hash-check", out=an)
    # with the option the checkpoint passes and the next input (the empty packed file) is what is refused
    res = _cli("assimilate", packed, "--ckpt", bad, "--static", static, "-o", an, "--skip-hash-check")
    line = refused(res, str(packed), out=an)
    assert "weights_sha256" not in line and "not verified" in res.stderr


def test_legacy_torch_save_state_dict_is_read(fixture_small, tmp_path):
    pt = tmp_path / "legacy.pt"
    torch.save(fixture_small["state_dict"], pt, _use_new_zipfile_serialization=False)
    out = tmp_path / "o.safetensors"
    res = _cli("convert-ckpt", pt, "--config", json.dumps(fixture_small["config"]), "-o", out)
    assert res.exit_code == 0, res.output
    sd = read_checkpoint(out).state_dict
    assert all(torch.equal(sd[k], v) for k, v in fixture_small["state_dict"].items())


def test_float16_weights_refused(fixture_small, tiny, tmp_path):
    pt = tmp_path / "half.pt"
    torch.save({k: v.half() for k, v in fixture_small["state_dict"].items()}, pt)
    out = tmp_path / "o.safetensors"
    refused(_cli("convert-ckpt", pt, "--config", json.dumps(fixture_small["config"]), "-o", out),
            "neither float32 nor bfloat16", "float16", out=out)
    half = lambda sd: {k: v.half() for k, v in sd.items()}
    st = rewrite(tiny, tmp_path / "half.safetensors", tensors=half,
                 weights_sha256=weights_sha256(half(read_checkpoint(tiny).state_dict)))
    refused(_cli("convert-ckpt", st, "-o", out), "neither float32 nor bfloat16", out=out)


def test_plain_state_dict_in_assimilate_points_to_convert_ckpt(fixture_small, tmp_path):
    pt = tmp_path / "w.pt"
    torch.save(fixture_small["state_dict"], pt)
    packed, static = tmp_path / "p.nc", tmp_path / "s.nc"
    packed.write_bytes(b"")
    static.write_bytes(b"")
    line = refused(_cli("assimilate", packed, "--ckpt", pt, "--static", static, "-o", tmp_path / "an.nc"),
                   "no model configuration", "healda convert-ckpt IN --config JSON")
    assert "pass --config" not in line


@pytest.mark.parametrize("content", [b"hello world" * 10, bytes(range(256)) * 4, b"\x00" * 64])
def test_garbage_is_not_called_a_torch_file(tmp_path, content):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(content)
    line = refused(_cli("convert-ckpt", junk, "--info"), "not a checkpoint")
    assert "torch file" not in line


@pytest.mark.parametrize("header", [
    b"[1, 2, 3]",
    b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 99]}}',
    b'{"a": {"dtype": "F32", "shape": "x", "data_offsets": [0, 8]}}',
    b'{"a": {"dtype": "EVIL", "shape": [2], "data_offsets": [0, 8]}}',
    b'{"a": 7}',
    b'{"__metadata__": {"format": 1}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}',
])
def test_malformed_safetensors_tables_refused(tmp_path, header):
    import struct

    p = tmp_path / "x.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 8)
    refused(_cli("convert-ckpt", p, "--info"), str(p))


def test_archive_claiming_more_than_memory_refused(tiny, tmp_path, monkeypatch):
    from healda_core import fileio

    mdlus = tmp_path / "m.mdlus"
    assert _cli("convert-ckpt", tiny, "--to", "mdlus", "-o", mdlus).exit_code == 0
    monkeypatch.setattr(fileio, "available_memory", lambda: 1_000_000)  # half of it is below the 1.3 MB claimed
    refused(_cli("convert-ckpt", mdlus, "--info"), "members claim", "memory")


@pytest.mark.parametrize("args", [b"[1, 2]", b"\xff\xfe not utf-8", b'"VideoHealDA"'])
def test_archive_json_members_that_are_not_objects_refused(fixture_small, tmp_path, args):
    import io
    import tarfile
    import zipfile

    buf = io.BytesIO()
    torch.save(fixture_small["state_dict"], buf)
    zipped = tmp_path / "z.mdlus"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("model.pt", buf.getvalue())
        zf.writestr("args.json", args)
    refused(_cli("convert-ckpt", zipped, "--info"), "args.json")
    tarred = tmp_path / "t.mdlus"
    with tarfile.open(tarred, "w") as tf:
        for name, data in (("model.pt", buf.getvalue()), ("args.json", args)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    refused(_cli("convert-ckpt", tarred, "--info"), str(tarred))
