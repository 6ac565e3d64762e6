"""HEALPix patch tokenizer and detokenizer (ARCHITECTURE §3.2, §3.10).

Both work face by face on PAD_XY images: a level-``level_fine`` face is an ``n × n`` image indexed
``[row, col]``; a ``p × p`` patch (``p = 2**(level_fine - level_coarse)``) becomes one level-``level_coarse``
token, whose PAD_XY index is ``f*nc*nc + r*nc + c``.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from healda_core import grid
from healda_core.model.embed import CalendarEmbedding


def _face_images(x: Tensor, n: int) -> Tensor:
    """(B, C, T, 12·n·n) → (B·T·12, C, n, n), ordered (b, t, f)."""
    b, c, t, _ = x.shape
    return x.view(b, c, t, 12, n, n).permute(0, 2, 3, 1, 4, 5).reshape(b * t * 12, c, n, n)


class HEALPixPatchTokenizer(nn.Module):
    """Static fields on level_fine → tokens on level_coarse, plus calendar and position embeddings.

    Args:
        in_channels: C_in. hidden_size: D (divisible by 4). level_fine, level_coarse: HEALPix levels.
        separate_time_axis: keep (B, T, X', D) (True, as HealDA) or flatten to (B, T·X', D).
    """

    def __init__(self, *, in_channels: int, hidden_size: int, level_fine: int, level_coarse: int,
                 separate_time_axis: bool = False, **_ignored):
        super().__init__()
        if hidden_size % 4:
            raise ValueError(f"hidden_size must be divisible by 4, got {hidden_size}")
        self.n, self.nc = grid.level_to_nside(level_fine), grid.level_to_nside(level_coarse)
        self.p = self.n // self.nc
        self.separate_time_axis = separate_time_axis
        npix_coarse = grid.npix(level_coarse)
        self.conv = nn.Conv2d(in_channels, hidden_size, kernel_size=self.p, stride=self.p)
        self.pos_embed = nn.Parameter(torch.randn(npix_coarse, hidden_size))
        lon, _ = grid.pixel_centers(level_coarse, "padxy")
        self.calendar_embed = CalendarEmbedding(torch.tensor(lon, dtype=torch.float32), hidden_size // 4)

    def forward(self, x: Float[Tensor, "b c t x"], second_of_day: Float[Tensor, "b t"],
                day_of_year: Float[Tensor, "b t"]) -> Float[Tensor, "b t xc d"]:
        b, _, t, _ = x.shape
        h = self.conv(_face_images(x, self.n))  # (B·T·12, D, nc, nc)
        d = h.shape[1]
        h = h.view(b, t, 12, d, self.nc, self.nc).permute(0, 1, 2, 4, 5, 3).reshape(b, t, -1, d)
        cal = self.calendar_embed(second_of_day, day_of_year).permute(0, 2, 3, 1)
        h = h + cal.to(h.dtype) + self.pos_embed
        return h if self.separate_time_axis else h.reshape(b, -1, d)


class HEALPixPatchDetokenizer(nn.Module):
    """Tokens (B, T, X', D) + conditioning (B, E) → fields (B, C_out, T, X) on level_fine, PAD_XY.

    adaLN (shift, scale; no gate) → affine-free LayerNorm → ConvTranspose2d p×p per face.
    """

    def __init__(self, *, hidden_size: int, out_channels: int, level_coarse: int, level_fine: int,
                 time_length: int = 1, condition_dim: int):
        super().__init__()
        self.n, self.nc = grid.level_to_nside(level_fine), grid.level_to_nside(level_coarse)
        self.p = self.n // self.nc
        self.time_length = time_length
        self.adaptive_modulation = nn.Sequential(nn.SiLU(), nn.Linear(condition_dim, 2 * hidden_size))
        self.norm_out = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.conv_t = nn.ConvTranspose2d(hidden_size, out_channels, kernel_size=self.p, stride=self.p)

    def initialize_weights(self) -> None:
        """Zero the modulation (conv_t keeps its default init, as the reference)."""
        nn.init.zeros_(self.adaptive_modulation[1].weight)
        nn.init.zeros_(self.adaptive_modulation[1].bias)

    def forward(self, h: Float[Tensor, "b t xc d"], c: Float[Tensor, "b e"]) -> Float[Tensor, "b cout t x"]:
        if h.ndim == 3:
            h = h.unflatten(1, (self.time_length, -1))
        b, t, _, d = h.shape
        shift, scale = self.adaptive_modulation(c).chunk(2, dim=-1)
        z = self.norm_out(h) * (1 + scale[:, None, None, :]) + shift[:, None, None, :]
        z = z.view(b * t * 12, self.nc, self.nc, d).permute(0, 3, 1, 2)
        y = self.conv_t(z)  # (B·T·12, C_out, n, n)
        cout = y.shape[1]
        return y.view(b, t, 12, cout, self.n, self.n).permute(0, 3, 1, 2, 4, 5).reshape(b, cout, t, -1)
