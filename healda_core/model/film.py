"""``ObsTokenizerFiLM``: observation value + metadata + id embeddings → tokens (ARCHITECTURE §5.4)."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn


class ObsTokenizerFiLM(nn.Module):
    """FiLM tokenizer: ``token = alpha ⊙ obs + beta`` with ``(alpha, beta) = MLP(cond).chunk(2)``.

    ``cond = [float_metadata | E_type[obs_type] | E_chan[channel] | E_plat[platform]]`` and
    ``MLP = Linear → LayerNorm(eps 1e-5) → SiLU → Linear``.

    Args:
        meta_dim: M metadata features. out_dim: F token width. n_embed: rows of each id table (1024).
        obs_type_embed_dim, channel_embed_dim (None → obs_type_embed_dim), platform_embed_dim (None/0 → no table).
        use_fused_mlp: use the fused GPU kernel when available. hidden_dim: None → 2F if F <= 64 else F.

    Shapes: obs (N,), float_metadata (N, M), ids (N,) → tokens (N, F).
    """

    def __init__(self, meta_dim: int, out_dim: int, n_embed: int = 1024, obs_type_embed_dim: int = 4,
                 channel_embed_dim: int | None = None, platform_embed_dim: int | None = None,
                 use_fused_mlp: bool = True, hidden_dim: int | None = None):
        super().__init__()
        channel_embed_dim = obs_type_embed_dim if channel_embed_dim is None else channel_embed_dim
        platform_embed_dim = platform_embed_dim or 0
        hidden_dim = (2 * out_dim if out_dim <= 64 else out_dim) if hidden_dim is None else hidden_dim
        if hidden_dim <= 0:
            raise ValueError(f"obs_film_hidden_dim must be positive, got {hidden_dim}")
        self.meta_dim, self.out_dim, self.use_fused_mlp = meta_dim, out_dim, use_fused_mlp
        self.embed_table = nn.Embedding(n_embed, obs_type_embed_dim)
        self.channel_embedding = nn.Embedding(n_embed, channel_embed_dim)
        if platform_embed_dim > 0:
            self.platform_embedding = nn.Embedding(n_embed, platform_embed_dim)
        else:
            self.platform_embedding = None
        cond_dim = meta_dim + obs_type_embed_dim + channel_embed_dim + platform_embed_dim
        self.cond_mlp = nn.Sequential(
            nn.Linear(cond_dim, hidden_dim), nn.LayerNorm(hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, 2 * out_dim)
        )

    def forward_torch(self, obs: Float[Tensor, " n"], float_metadata: Float[Tensor, "n m"], obs_type: Int[Tensor, " n"],
                      channel: Int[Tensor, " n"], platform: Int[Tensor, " n"]) -> Float[Tensor, "n f"]:
        """The PyTorch path (any device)."""
        parts = [float_metadata.to(self.embed_table.weight.dtype), self.embed_table(obs_type.long()),
                 self.channel_embedding(channel.long())]
        if self.platform_embedding is not None:
            parts.append(self.platform_embedding(platform.long()))
        alpha, beta = self.cond_mlp(torch.cat(parts, dim=-1)).chunk(2, dim=-1)
        return alpha * obs[:, None].to(alpha.dtype) + beta

    def forward(self, obs: Float[Tensor, " n"], float_metadata: Float[Tensor, "n m"], obs_type: Int[Tensor, " n"],
                channel: Int[Tensor, " n"], platform: Int[Tensor, " n"]) -> Float[Tensor, "n f"]:
        from healda_core.kernels import kernel_op, kernels_enabled

        if self.use_fused_mlp and kernels_enabled(obs.device):
            impl = kernel_op("film_op", "film_tokenize")
            if impl is not None:
                return impl(self, obs, float_metadata, obs_type, channel, platform)
        return self.forward_torch(obs, float_metadata, obs_type, channel, platform)

