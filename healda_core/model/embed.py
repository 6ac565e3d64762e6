"""Embeddings: calendar (local time + day of year), EDM noise embedding, temporal RoPE tables.

Matches the reference (ARCHITECTURE §3.2–§3.4) to float32 rounding.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn


class FrequencyEmbedding(nn.Module):
    """``[cos(2πk·u) for k=1..C] ++ [sin(2πk·u) for k=1..C]`` on a new channel axis 1.

    Input (B, T, X) → output (B, 2C, T, X). Buffer ``freqs`` = 1..C (int64, non-persistent).
    """

    def __init__(self, num_channels: int):
        super().__init__()
        self.register_buffer("freqs", torch.arange(1, num_channels + 1, dtype=torch.int64), persistent=False)

    def forward(self, u: Float[Tensor, "b t x"]) -> Float[Tensor, "b c2 t x"]:
        w = (2 * math.pi * self.freqs).to(u.dtype)
        angle = u.unsqueeze(1) * w.view(1, -1, 1, 1)
        return torch.cat([torch.cos(angle), torch.sin(angle)], dim=1)


class CalendarEmbedding(nn.Module):
    """Local solar time and day-of-year embedding per pixel (D channels = 4·C).

    Channel layout: ``[cos 2πk·lt | sin 2πk·lt | cos 2πk·df | sin 2πk·df]``, k = 1..C, with
    ``lt = ((sod + floor(lon·240)) mod 86400) / 86400`` and ``df = frac(doy / 365.25)``.

    Args:
        lon: (X,) pixel-centre longitudes in degrees [0, 360), PAD_XY order (stored as float32 buffer).
        embed_channels: C = D / 4.
    """

    def __init__(self, lon: Float[Tensor, " x"], embed_channels: int):
        super().__init__()
        self.register_buffer("lon", lon.to(torch.float32), persistent=False)
        self.embed_second = FrequencyEmbedding(embed_channels)
        self.embed_day = FrequencyEmbedding(embed_channels)

    def forward(self, second_of_day: Float[Tensor, "b t"], day_of_year: Float[Tensor, "b t"]) -> Float[Tensor, "b d t x"]:
        offset = (self.lon * 86400) // 360  # floor division, as the reference
        local_time = torch.remainder(second_of_day[:, :, None] + offset, 86400)
        a = self.embed_second(local_time / 86400)
        b = self.embed_day(torch.remainder(day_of_year / 365.25, 1.0)[:, :, None])
        return torch.cat([a, b.expand(-1, -1, -1, a.shape[-1])], dim=1)


class PositionalEmbedding(nn.Module):
    """EDM sinusoidal noise embedding: ``[sin(t·f_k) | cos(t·f_k)]``, f_k = 10000^(−k/(C/2−1)).

    ``freqs`` is a persistent buffer (it is in the reference state_dict).
    """

    def __init__(self, num_channels: int, max_positions: int = 10000):
        super().__init__()
        half = num_channels // 2
        k = torch.arange(half, dtype=torch.float32) / max(half - 1, 1)
        self.register_buffer("freqs", (1.0 / max_positions) ** k)

    def forward(self, t: Float[Tensor, " b"]) -> Float[Tensor, "b c"]:
        e = torch.outer(t.to(self.freqs.dtype), self.freqs)
        return torch.cat([torch.sin(e), torch.cos(e)], dim=1)


class EDMConditionEmbedder(nn.Module):
    """Noise level (+ optional class labels) → pre-activation conditioning vector (B, E)."""

    def __init__(self, emb_channels: int, noise_channels: int, condition_dim: int = 0):
        super().__init__()
        self.output_dim = emb_channels
        self.condition_dim = condition_dim
        self.map_noise = PositionalEmbedding(noise_channels)
        if condition_dim > 0:
            self.map_condition = nn.Linear(condition_dim, noise_channels)
        self.map_layer0 = nn.Linear(noise_channels, emb_channels)
        self.map_layer1 = nn.Linear(emb_channels, emb_channels)

    def forward(self, t: Float[Tensor, " b"], condition: Float[Tensor, "b k"] | None = None) -> Float[Tensor, "b e"]:
        out = self.map_noise(t)
        if self.condition_dim > 0 and condition is not None:
            out = out + self.map_condition(condition * math.sqrt(self.condition_dim))
        return self.map_layer1(nn.functional.silu(self.map_layer0(out)))


class RotaryEmbedding1DTables(nn.Module):
    """Interleaved-pair RoPE tables (max_seq_len, head_dim): channels 2i and 2i+1 share ω_i = θ^(−2i/hd)."""

    def __init__(self, head_dim: int, max_seq_len: int = 100, base: float = 100.0):
        super().__init__()
        omega = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angle = torch.arange(max_seq_len, dtype=torch.float32)[:, None] * omega[None, :]
        angle = angle.repeat_interleave(2, dim=1)
        self.max_seq_len = max_seq_len
        self.register_buffer("cos", torch.cos(angle), persistent=False)
        self.register_buffer("sin", torch.sin(angle), persistent=False)

    def forward(self, seq_len: int, offset: int = 0) -> tuple[Float[Tensor, "t hd"], Float[Tensor, "t hd"]]:
        """Rows ``[offset, offset + seq_len)`` (global frame positions)."""
        if offset + seq_len > self.max_seq_len:
            raise ValueError(f"sequence length {offset + seq_len} exceeds max_seq_len={self.max_seq_len}")
        return self.cos[offset : offset + seq_len], self.sin[offset : offset + seq_len]


def apply_rope(x: Float[Tensor, "b t x h hd"], cos: Float[Tensor, "t hd"], sin: Float[Tensor, "t hd"]) -> Tensor:
    """Rotate interleaved pairs along the time axis 1, in fp32; returns x's dtype."""
    xf = x.float()
    pairs = xf.unflatten(-1, (-1, 2))
    rot = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    shape = (1, cos.shape[0]) + (1,) * (x.ndim - 3) + (cos.shape[1],)
    return (xf * cos.view(shape) + rot * sin.view(shape)).to(x.dtype)
