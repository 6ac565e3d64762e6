"""Model-level autotuning (``healda autotune``): run every kernel bucket a model configuration will hit on
this GPU, so the autotuner of :mod:`healda_core.kernels.tuning` picks (and optionally saves) its configs.

The observation counts are those of the kernel benchmarks (:func:`counts_for`): P pixels, 35% empty,
lognormal(0, 1) weights capped at 20x the median, N observations drawn multinomially.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from healda_core.checkpoint import read_checkpoint
from healda_core.errors import AcceleratorError
from healda_core.kernels import kernels_enabled, tuning
from healda_core.model.film import ObsTokenizerFiLM
from healda_core.model.healda import default_config
from healda_core.presets import preset_config


def counts_for(n: int, p: int = 98_304, seed: int = 0, empty_frac: float = 0.35) -> np.ndarray:
    """Per-pixel counts of the benchmark workload (same empty set and weights for every N)."""
    rng = np.random.default_rng(seed)
    nonempty = rng.random(p) >= empty_frac
    w = np.minimum(rng.lognormal(0.0, 1.0, size=p), 20.0)  # median 1: capped at 20x the median
    w[~nonempty] = 0.0
    return rng.multinomial(n, w / w.sum())


def autotune(save: bool = False, cache_dir: str | os.PathLike | None = None, ckpt: str | os.PathLike | None = None,
             preset: str = "healda-v2", ns: tuple[int, ...] | list[int] = (2_000_000, 10_000_000, 30_000_000),
             deterministic: bool = False, batch: int = 1, progress: Callable[[str], None] | None = None) -> dict:
    """Tune (or, deterministic, only look up) every kernel bucket the model will hit on this GPU.

    The layout (heads, widths, pixel count B·T·12·4**level_model) comes from ``ckpt``'s configuration or
    the named preset; each N in ``ns`` runs the FiLM tokenizer and the pixel attention forward and
    backward once on synthetic data of the benchmark distribution, plus the packing kernels.

    Raises:
        AcceleratorError: no CUDA device or the kernels are disabled.
    """
    if not torch.cuda.is_available():
        raise AcceleratorError("autotune needs a CUDA GPU (none is visible to PyTorch)")
    if not kernels_enabled(torch.device("cuda")):
        raise AcceleratorError("the Triton kernels are disabled (HEALDA_KERNELS) or triton is missing")
    if ckpt is not None:
        cfg = read_checkpoint(ckpt).config
    else:
        cfg = preset_config(preset)
    full = default_config()
    full.update(cfg)
    cfg = full
    if cache_dir is None and save and tuning.STATE.cache_dir is None:
        cache_dir = Path("~/.cache/healda/autotune").expanduser()
    tuning.configure(cache_dir=cache_dir, save=save, deterministic=deterministic)
    say = progress or (lambda s: None)
    t0 = tuning.STATE.tuned_s
    from healda_core.kernels.film_op import film_tokenize  # the ops import triton: only once a GPU is known
    from healda_core.kernels.packing import counting_sort
    from healda_core.kernels.pixel_attn_op import pixel_attention

    p = batch * cfg["time_length"] * 12 * 4 ** cfg["level_model"]
    n_q, n_kv, d = cfg["pixel_attn_n_q_heads"], cfg["pixel_attn_n_kv_heads"], cfg["pixel_attn_head_dim"]
    f = cfg["obs_token_dim"]
    film = ObsTokenizerFiLM(cfg["obs_meta_dim"], f, 1024, cfg["obs_type_embed_dim"], cfg["channel_embed_dim"],
                            cfg["platform_embed_dim"], True, cfg["obs_film_hidden_dim"]).cuda()
    dev = torch.device("cuda")
    for n in ns:
        say(f"tuning N={n:,} over P={p:,} pixels")
        counts = torch.as_tensor(counts_for(n, p), device=dev)
        cu = torch.zeros(p + 1, dtype=torch.int32, device=dev)
        cu[1:] = counts.cumsum(0)
        flat = torch.repeat_interleave(torch.arange(p, device=dev, dtype=torch.int32), counts)
        counting_sort(flat, p)
        ids = torch.randint(0, 1024, (n,), device=dev)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            tok = film_tokenize(film, torch.randn(n, device=dev), torch.randn(n, cfg["obs_meta_dim"], device=dev),
                                ids, ids, ids)
        torch.autograd.grad(tok.float().sum(), list(film.parameters()))
        q = torch.randn(p, n_q, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
        x = tok.detach().requires_grad_()
        w = (torch.randn(n_kv * d, f, device=dev) / f ** 0.5).requires_grad_()
        out = pixel_attention(q, x, w, w, None, cu, int(counts.max()))
        torch.autograd.grad(out, [q, x, w], torch.ones_like(out))
        del q, x, w, out, tok, ids, flat, cu, counts
        torch.cuda.empty_cache()
    rep = tuning.report()
    rep["tuning_seconds"] = tuning.STATE.tuned_s - t0
    rep["written"] = bool(save and rep["cache_file"] and tuning.STATE.tuned_buckets)
    if save and rep["cache_file"]:
        tuning.save_cache()
        rep["written"] = True
    return rep
