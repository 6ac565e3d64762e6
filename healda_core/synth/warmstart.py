"""Climatology start: initialise a freshly built HealDA so that its analysis *is* the training climatology.

A randomly initialised model outputs per-token noise of the order of the ERA5 standard deviation (the
positional embedding is ``randn``, the output projection random): a few hundred CPU steps spend themselves on
unlearning it, and an undertrained model leaves a mosaic of token-sized outliers. Data assimilation starts
from a background instead; here the background is the climatology of the training realisations:

1. the positional embedding (one vector per model-grid token) encodes the climatology's leading singular
   vectors over tokens, with two extra coordinates that make every token's vector zero-mean and of the same
   norm, so the affine-free output LayerNorm maps it linearly;
2. the output projection (``conv_t``: weights and bias) is the least-squares fit, on the actual features of
   training batches, of the normalised climatology at every output pixel.

DiT blocks start as the identity (adaLN-Zero), so the initial analysis equals the climatology up to the fit's
residual; training then learns the observation-driven departures from it.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float

from healda_core import grid


def normalised_climatology(clim_mean: dict[str, np.ndarray], channels: list[str], level: int
                           ) -> Float[np.ndarray, "c x"]:
    """(C, X) climatology in ERA5-normalised units, PAD_XY order, from NEST fields per variable."""
    from healda_core.train.datasets import era5_stats

    mean, std = era5_stats(channels)
    levels = (1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50)
    rows = [clim_mean[n] if n in clim_mean and np.ndim(clim_mean[n]) == 1 else clim_mean[n[0]][levels.index(int(n[1:]))]
            for n in channels]
    out = (np.stack(rows) - mean[:, None]) / std[:, None]
    return grid.reorder(out, level, "nest", "padxy").astype(np.float64)


def _token_targets(clim: np.ndarray, n_coarse: int, p: int) -> np.ndarray:
    """(C, X) PAD_XY → (X', C·p·p): each model-grid token's output pixels (the detokenizer's p×p patch)."""
    c = clim.shape[0]
    img = clim.reshape(c, 12, n_coarse, p, n_coarse, p)  # face, row-token, row-in-patch, col-token, col-in-patch
    return img.transpose(1, 2, 4, 0, 3, 5).reshape(12 * n_coarse * n_coarse, c * p * p)


def _embedding(targets: np.ndarray, dim: int, rms: float) -> np.ndarray:
    """(X', dim) vectors: leading singular coordinates of the token targets, zero mean, equal norms."""
    a = targets - targets.mean(0)
    u, s, _ = np.linalg.svd(a, full_matrices=False)
    k = min(dim - 2, u.shape[1])
    coords = u[:, :k] * s[:k] / s[0] * np.sqrt(u.shape[0])  # leading coordinate of rms 1 over tokens
    total = rms**2 * dim  # squared norm of every vector
    scale = np.sqrt(0.5 * total / max(float(((coords**2).sum(1) + coords.sum(1) ** 2).max()), 1e-12))
    coords = coords * scale
    sum_, sq = coords.sum(1), (coords**2).sum(1)
    rest = total - sq  # a + b = −sum, a² + b² = rest
    disc = np.sqrt(np.maximum(2 * rest - sum_**2, 0.0))
    out = np.zeros((a.shape[0], dim))
    out[:, :k] = coords
    out[:, k], out[:, k + 1] = (-sum_ + disc) / 2, (-sum_ - disc) / 2
    return out


@torch.no_grad()
def start_from_climatology(trainer, clim: Float[np.ndarray, "c x"], n_batches: int = 4, rms: float = 6.0,
                           ridge: float = 1e-3) -> float:
    """Set ``trainer.model``'s positional embedding and output projection in place (module docstring).

    ``rms``: per-dimension RMS of the embedding; the calendar embedding (RMS 0.7, varying with local time and
    day of year) and the static-field projection are added to it, so a larger value keeps the readout from
    depending on the calendar. ``ridge``: Tikhonov weight of the least-squares fit (relative to the mean
    feature variance). Needs a model at initialisation (identity blocks). Returns the RMS misfit (normalised
    units) of the initial output to the climatology on the fitting batches.
    """
    from healda_core.train.data import ResumableBatchSampler

    model = trainer.model
    tok, det = model.dit.tokenizer, model.dit.detokenizer
    if any(float(m.weight.abs().max()) > 0 for m in det.adaptive_modulation if isinstance(m, torch.nn.Linear)):
        raise ValueError("the climatology start needs a freshly initialised model")
    targets = _token_targets(clim, det.nc, det.p)  # (X', C·p·p)
    emb = _embedding(targets, tok.pos_embed.shape[1], rms)
    tok.pos_embed.copy_(torch.as_tensor(emb, dtype=tok.pos_embed.dtype))
    feats: list[torch.Tensor] = []
    hook = det.norm_out.register_forward_hook(lambda _m, _i, out: feats.append(out.detach().float()))
    try:
        it = trainer._loader(ResumableBatchSampler(len(trainer.train_set), 1, 0, 1, seed=0))
        for _ in range(n_batches):
            trainer.forward(model, next(it))
    finally:
        hook.remove()
    d = feats[0].shape[-1]
    z = torch.cat([f.reshape(-1, feats[0].shape[-2], d) for f in feats]).cpu().double()  # (N, X', D)
    design = torch.cat([z, torch.ones(*z.shape[:2], 1, dtype=z.dtype)], -1).reshape(-1, d + 1)
    y = torch.as_tensor(targets, dtype=torch.float64).repeat(z.shape[0], 1)
    gram = design.T @ design
    gram += ridge * torch.diag(gram).mean() * torch.eye(d + 1, dtype=gram.dtype)
    sol = torch.linalg.solve(gram, design.T @ y)  # (D + 1, C·p·p)
    c_out, p = det.conv_t.out_channels, det.p
    w = sol[:d].reshape(d, c_out, p, p)
    bias = sol[d].reshape(c_out, p, p).mean((1, 2))  # conv_t has one bias per channel
    det.conv_t.weight.copy_(w.to(det.conv_t.weight.dtype))
    det.conv_t.bias.copy_(bias.to(det.conv_t.bias.dtype))
    misfit = design[:, :d] @ sol[:d] + bias.repeat_interleave(p * p) - y
    return float(misfit.pow(2).mean().sqrt())
