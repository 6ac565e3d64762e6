"""Straight from the mapped safetensors file: the weight hash (and its check in the background), and the tensors
copied to a device without an intermediate CPU copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from healda_core.checkpoint import read_checkpoint, write_safetensors
from healda_core.checkpoint.format import (
    file_weights_sha256,
    mapped_to_device,
    read_header,
    read_raw_header,
    weights_sha256,
)
from healda_core.errors import CheckpointError
from healda_core.presets import init_checkpoint


@pytest.fixture(scope="module", params=["fp32", "bf16"])
def ckpt(tmp_path_factory, request) -> Path:
    path = tmp_path_factory.mktemp("hash") / f"tiny-{request.param}.safetensors"
    write_safetensors(init_checkpoint("healda-tiny", dtype=request.param), path)
    return path


def _flip(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    header = read_raw_header(src)
    base = len(data) - max(int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__")
    name = sorted(k for k in header if k != "__metadata__" and "weight" in k)[0]
    data[base + int(header[name]["data_offsets"][0])] ^= 0x01  # lowest mantissa bit: still finite
    dst.write_bytes(bytes(data))
    return dst


def test_file_hash_equals_the_hash_of_the_loaded_tensors(ckpt):
    assert file_weights_sha256(ckpt) == weights_sha256(load_file(str(ckpt))) == read_header(ckpt).weights_sha256


def test_background_check_passes_a_sound_file_and_refuses_a_flipped_bit(ckpt, tmp_path):
    ok = read_checkpoint(ckpt, verify="background")
    assert ok.verification is not None
    ok.wait_verified()
    bad = read_checkpoint(_flip(ckpt, tmp_path / "bad.safetensors"), verify="background")
    with pytest.raises(CheckpointError, match="weight hash mismatch"):
        bad.wait_verified()
    with pytest.raises(CheckpointError, match="weight hash mismatch"):
        read_checkpoint(tmp_path / "bad.safetensors")  # the synchronous check, from the file too


def test_mapped_tensors_equal_safetensors_load_file(ckpt):
    ref = load_file(str(ckpt))
    got = mapped_to_device(ckpt, torch.device("cpu"), workers=3)
    assert list(got) == list(ref)
    for k, v in ref.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape and torch.equal(got[k], v), k
