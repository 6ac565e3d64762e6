"""``healda train --resume`` on damaged or hostile checkpoints: exit 3, one ``error:`` line, nothing executed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from healda_cli import main as cli_main
from tests.checkpoint.test_refusals import refused, rewrite

runner = CliRunner()
TOML = ('[model]\npreset = "healda-tiny"\nhidden_size = 32\nout_channels = 3\ntime_length = 4\n'
        '[data]\nsynthetic = 8\nsynthetic_val = 0\nnum_workers = 0\nbatch_size = 2\n'
        '[optim]\ndecay_samples = 40\n[train]\nckpt_every = 2\nlog_every = 1\n')


class Evil:  # unpickling it would call print: a stand-in for arbitrary code
    def __reduce__(self):
        return (print, ("pwned",))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("run")
    (root / "run.toml").write_text(TOML)
    res = runner.invoke(cli_main.app, ["train", "--config", str(root / "run.toml"), "--out", str(root / "a"),
                                       "--max-steps", "2"])
    assert res.exit_code == 0, res.output
    return root


def _resume(run_dir: Path, tmp_path: Path, damage) -> tuple:
    run = tmp_path / "a"
    shutil.copytree(run_dir / "a", run)
    ckpt = run / "checkpoints" / "step_00000002"
    damage(ckpt)
    res = runner.invoke(cli_main.app, ["train", "--config", str(run_dir / "run.toml"), "--out", str(run),
                                       "--max-steps", "4", "--resume"])
    return res, ckpt


def _pickled(name: str):
    def damage(ckpt: Path) -> None:
        obj = torch.load(ckpt / name, weights_only=True)
        obj["extra"] = Evil()
        torch.save(obj, ckpt / name)
    return damage


@pytest.mark.parametrize("name", ["train_state.pt", "rng_rank0.pt"])
def test_pickle_bearing_state_refused(run_dir, tmp_path, capfd, name):
    res, ckpt = _resume(run_dir, tmp_path, _pickled(name))
    refused(res, str(ckpt / name), "pickled objects")
    assert "pwned" not in res.output and "pwned" not in capfd.readouterr().out
    assert not (ckpt.parent / "step_00000004").exists()


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("train_state.pt", b"\x80\x02garbage", "not a weights-only torch file"),
    ("train_state.pt", b"", "unreadable torch file"),
    ("rng_rank0.pt", b"PK\x03\x04 truncated zip", "unreadable torch file"),
])
def test_garbage_state_refused(run_dir, tmp_path, name, content, needle):
    res, ckpt = _resume(run_dir, tmp_path, lambda c: (c / name).write_bytes(content))
    refused(res, str(ckpt / name), needle)


@pytest.mark.parametrize(("name", "obj", "needle"), [
    ("train_state.pt", {"step": 2}, "missing or wrongly typed entries: consumed"),
    ("train_state.pt", [1, 2], "expected a dict"),
    ("rng_rank0.pt", {"torch": 1, "cuda": [], "python": [], "numpy": {}}, "torch"),
])
def test_wrongly_structured_state_refused(run_dir, tmp_path, name, obj, needle):
    res, ckpt = _resume(run_dir, tmp_path, lambda c: torch.save(obj, c / name))
    refused(res, str(ckpt / name), needle)


def test_state_that_does_not_fit_the_run_refused(run_dir, tmp_path):
    def damage(ckpt: Path) -> None:
        st = torch.load(ckpt / "train_state.pt", weights_only=True)
        st["optimizer"] = {"state": {}, "param_groups": []}
        torch.save(st, ckpt / "train_state.pt")

    refused(_resume(run_dir, tmp_path, damage)[0], "does not fit this run")

    def other_rng(ckpt: Path) -> None:
        rng = torch.load(ckpt / "rng_rank0.pt", weights_only=True)
        rng["torch"] = torch.zeros(3, dtype=torch.uint8)
        torch.save(rng, ckpt / "rng_rank0.pt")

    refused(_resume(run_dir, tmp_path / "b", other_rng)[0], "does not fit this run")


def test_model_header_with_another_configuration_refused(run_dir, tmp_path):
    def damage(ckpt: Path) -> None:
        p = ckpt / "model.safetensors"
        rewrite(p, p.with_suffix(".tmp"), config={"num_layers": 1_000_000}).replace(p)

    refused(_resume(run_dir, tmp_path, damage)[0], "another model configuration", "num_layers")


def test_tampered_model_weights_refused(run_dir, tmp_path):
    def damage(ckpt: Path) -> None:
        p = ckpt / "model.safetensors"
        data = bytearray(p.read_bytes())
        data[-100] ^= 0xFF
        p.write_bytes(bytes(data))

    refused(_resume(run_dir, tmp_path, damage)[0], "hash mismatch")


def test_model_config_in_the_run_file_is_checked(tmp_path):
    (tmp_path / "run.toml").write_text(TOML.replace("hidden_size = 32", "hidden_size = -64"))
    res = runner.invoke(cli_main.app, ["train", "--config", str(tmp_path / "run.toml"), "--out",
                                       str(tmp_path / "a"), "--max-steps", "1"])
    assert res.exit_code == 2, res.output
    assert "hidden_size=-64 is outside" in res.stderr and "Traceback" not in res.output
