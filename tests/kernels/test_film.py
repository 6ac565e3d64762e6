"""Fused FiLM tokenizer kernels vs ``ObsTokenizerFiLM.forward_torch``: tokens and every gradient."""

from __future__ import annotations

import pytest
import torch

from healda_core.kernels import film_op, tuning
from healda_core.model.film import ObsTokenizerFiLM
from tests.kernels.conftest import DEVICE, gpu, rel_err


def setup(n=150, meta=12, out=16, e=(4, 4, 4), hidden=None, seed=0):
    torch.manual_seed(seed)
    m = ObsTokenizerFiLM(meta, out, n_embed=32, obs_type_embed_dim=e[0], channel_embed_dim=e[1],
                         platform_embed_dim=e[2], hidden_dim=hidden).to(DEVICE)
    with torch.no_grad():  # non-trivial LayerNorm affine
        m.cond_mlp[1].weight.normal_(1, 0.3)
        m.cond_mlp[1].bias.normal_(0, 0.3)
    obs = torch.randn(n, device=DEVICE)
    md = torch.randn(n, meta, device=DEVICE)
    ids = [torch.randint(0, 32, (n,), device=DEVICE) for _ in range(3)]
    return m, obs, md, ids


LAYOUTS = {
    "pow2": dict(meta=12, out=16, e=(4, 4, 4)),
    "out7_no_platform": dict(meta=5, out=7, e=(3, 5, 0), hidden=20),   # reference split is wrong here
    "out24": dict(meta=50, out=24, e=(4, 16, 8), hidden=40),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_matches_torch_path(name):
    m, obs, md, ids = setup(**LAYOUTS[name])
    obs.requires_grad_()
    md.requires_grad_()
    a = film_op.film_tokenize(m, obs, md, *ids)
    b = m.forward_torch(obs, md, *ids)
    assert a.shape == b.shape and a.dtype == b.dtype
    tol_f, tol_b = (2e-5, 1e-4) if DEVICE.type == "cpu" else (5e-3, 2e-2)  # TF32 on the GPU
    assert rel_err(a, b) <= tol_f
    go = torch.randn_like(b)
    names = ["obs", "float_metadata"] + [n for n, _ in m.named_parameters()]
    leaves = [obs, md] + list(m.parameters())
    for name, x, y in zip(names, torch.autograd.grad(a, leaves, go), torch.autograd.grad(b, leaves, go)):
        assert rel_err(x, y, floor=1e-3) <= tol_b, (name, rel_err(x, y))


def test_persistent_programs_walk_several_row_tiles(monkeypatch):
    """32-row tiles, one program per SM (2 on the CPU interpreter): each program takes several tiles, the last
    one partial; tokens and gradients must match the PyTorch path."""
    monkeypatch.setattr(tuning, "OVERRIDE", {"BLOCK_M": 32, "PROGS_PER_SM": 1, "num_warps": 8})
    m, obs, md, ids = setup(n=150, **{k: v for k, v in LAYOUTS["out24"].items()})
    a = film_op.film_tokenize(m, obs, md, *ids)
    b = m.forward_torch(obs, md, *ids)
    tol_f, tol_b = (2e-5, 1e-4) if DEVICE.type == "cpu" else (5e-3, 2e-2)
    assert rel_err(a, b) <= tol_f
    go = torch.randn_like(b)
    params = list(m.parameters())
    for x, y in zip(torch.autograd.grad(a, params, go), torch.autograd.grad(b, params, go)):
        assert rel_err(x, y, floor=1e-3) <= tol_b


def test_module_forward_dispatches_and_all_params_get_grads():
    m, obs, md, ids = setup()
    out = m(obs, md, *ids)
    assert out.grad_fn is not None and "film" in type(out.grad_fn).__name__.lower()  # the kernel path
    out.square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_zero_rows():
    m, obs, md, ids = setup(n=0)
    out = film_op.film_tokenize(m, obs, md, *ids)
    assert out.shape == (0, 16)
    grads = torch.autograd.grad(out.sum(), list(m.parameters()), allow_unused=False)
    assert all(torch.all(g == 0) for g in grads)


def test_deterministic_mode_same_gradients():
    m, obs, md, ids = setup(n=90)
    go = torch.randn(90, 16, device=DEVICE)
    g1 = torch.autograd.grad(film_op.film_tokenize(m, obs, md, *ids), list(m.parameters()), go)
    torch.use_deterministic_algorithms(True)
    try:
        g2 = torch.autograd.grad(film_op.film_tokenize(m, obs, md, *ids), list(m.parameters()), go)
        g3 = torch.autograd.grad(film_op.film_tokenize(m, obs, md, *ids), list(m.parameters()), go)
    finally:
        torch.use_deterministic_algorithms(False)
    for a, b, c in zip(g1, g2, g3):
        assert rel_err(a, b) < 1e-5
        assert torch.equal(b, c)


def test_opcheck():
    m, obs, md, ids = setup(n=40)
    lin1, ln, _, lin2 = m.cond_mlp
    args = (obs, md, *ids, m.embed_table.weight, m.channel_embedding.weight, m.platform_embedding.weight,
            lin1.weight, lin1.bias, ln.weight, ln.bias, lin2.weight, lin2.bias, 1e-5, torch.float32)
    torch.library.opcheck(torch.ops.healda.film_tokenizer_fwd.default, args)


@gpu
def test_gpu_autocast_gives_bf16_tokens_within_tolerance():
    m, obs, md, ids = setup(n=5000, meta=50, out=32, e=(4, 16, 8), hidden=64)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        a = m(obs, md, *ids)
    b = m.forward_torch(obs, md, *ids)
    assert a.dtype == torch.bfloat16
    assert rel_err(a, b) <= 5e-3


def test_eager_calls_skip_the_op_dispatcher_and_match_the_op(monkeypatch):
    """Eager inference and eager training run the implementations directly; results and every gradient equal
    the registered ops' (which torch.compile traces)."""
    m, obs, md, ids = setup(n=40)
    md = md.clone().requires_grad_()
    params = [md, *m.parameters()]
    via_op = torch.ops.healda.film_tokenizer_fwd  # the registered op, called as compiled code would
    lin1, ln, _, lin2 = m.cond_mlp
    args = (obs, md, *ids, m.embed_table.weight, m.channel_embedding.weight, m.platform_embedding.weight,
            lin1.weight, lin1.bias, ln.weight, ln.bias, lin2.weight, lin2.bias, float(ln.eps), lin1.weight.dtype)
    out_op = via_op(*args)
    go = torch.randn_like(out_op)
    g_op = torch.autograd.grad(out_op, params, go)

    def no_op(*a, **k):
        raise AssertionError("the custom op was dispatched for an eager call")

    monkeypatch.setattr(film_op, "film_fwd", no_op)
    monkeypatch.setattr(film_op, "film_bwd", no_op)
    with torch.no_grad():
        direct = film_op.film_tokenize(m, obs, md, *ids)
    assert torch.equal(direct, out_op.detach())
    eager = film_op.film_tokenize(m, obs, md, *ids)
    assert type(eager.grad_fn).__name__ == "_EagerFilmBackward"
    assert torch.equal(eager.detach(), out_op.detach())
    for a, b in zip(torch.autograd.grad(eager, params, go), g_op):  # GPU: embedding atomics add in any order
        assert torch.equal(a, b) if DEVICE.type == "cpu" else rel_err(a, b, floor=1e-3) <= 1e-5


@gpu
def test_gpu_dense_gradients_are_reproducible_across_many_tiles(monkeypatch):
    """The backward adds each row tile's weight gradients into its program's slice with atomics; with many tiles
    per program the dense gradients (everything but the embedding tables) must still be bitwise reproducible."""
    monkeypatch.setattr(tuning, "OVERRIDE", {"PROGS_PER_SM": 1})
    m, obs, md, ids = setup(n=300_000, meta=50, out=32, e=(4, 16, 8), hidden=64)
    dense = [p for n, p in m.named_parameters() if n.startswith("cond_mlp")]
    go = torch.randn(300_000, 32, device=DEVICE, dtype=torch.bfloat16)

    def grads():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = m(obs, md, *ids)
        return torch.autograd.grad(out, dense, go)

    first, second = grads(), grads()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    ref = torch.autograd.grad(m.forward_torch(obs, md, *ids), dense, go.float())
    assert all(rel_err(a, b, floor=1e-3) <= 2e-2 for a, b in zip(first, ref, strict=True))
