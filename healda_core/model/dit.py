"""Video diffusion transformer: adaLN-Zero blocks (spatial → cross → temporal → MLP) and the stack.

ARCHITECTURE §3.5 and §3.11. Every residual branch is gated: ``h += DropPath(gate) ⊙ branch(modulate(LN(h)))``
with ``modulate(z, shift, scale) = z·(1 + scale) + shift`` and all modulations computed from SiLU(emb).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from jaxtyping import Float
from torch import Tensor, nn

from healda_core.model.attention import SpatialSelfAttention, TemporalAttention, sdpa_priority
from healda_core.model.compile_policy import compile_options, compile_wanted
from healda_core.model.embed import EDMConditionEmbedder, RotaryEmbedding1DTables


class AdaLNModulation(nn.Module):
    """``SiLU → Linear(E, 3·n_blocks·D)``, chunked into ``[shift, scale, gate] × n_blocks`` (B, D) vectors."""

    def __init__(self, embedding_dim: int, condition_embed_dim: int, n_blocks: int = 1, zero_init: bool = True):
        super().__init__()
        self.n_chunks = 3 * n_blocks
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(condition_embed_dim, self.n_chunks * embedding_dim))
        self.zero_init = zero_init
        if zero_init:
            self.reset_zero()

    def reset_zero(self) -> None:
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, c: Float[Tensor, "b e"]) -> tuple[Tensor, ...]:
        # in the parameters' dtype even under autocast: a (B, E) row times the weight is a matrix-vector
        # product, memory bound, so bf16 would only add a weight cast and a slower split-K kernel per call
        with torch.autocast(c.device.type, enabled=False):
            out = self.modulation(c.to(self.modulation[1].weight.dtype))
        return tuple(m[:, None, None, :] for m in out.chunk(self.n_chunks, dim=-1))


class Mlp(nn.Module):
    """``Linear(D, rD) → GELU(tanh) → Linear(rD, D)`` (keys ``layers.0``/``layers.2``)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        fc1, _, fc2 = self.layers
        # CUDA bf16 inference: GELU(tanh) in the fc1 GEMM's epilogue (cuBLASLt); not for an FP8 fc1 (model/fp8.py)
        if type(fc1) is nn.Linear and _gelu_epilogue(x):
            dt = torch.bfloat16
            h = torch._addmm_activation(fc1.bias.to(dt), x.reshape(-1, x.shape[-1]).to(dt), fc1.weight.to(dt).t(),
                                        use_gelu=True)
            return fc2(h.view(*x.shape[:-1], h.shape[-1]))
        return self.layers(x)


def _gelu_epilogue(x: Tensor) -> bool:
    """Whether :class:`Mlp` fuses its GELU into the first GEMM: CUDA, bf16 autocast, no autograd. On CUDA,
    ``torch._addmm_activation(..., use_gelu=True)`` is the tanh-approximated GELU of the model (tested against
    ``F.gelu(approximate="tanh")``); on the CPU it would be the erf form, so the CPU never takes it."""
    return (x.is_cuda and not torch.is_grad_enabled() and torch.is_autocast_enabled("cuda")
            and torch.get_autocast_dtype("cuda") == torch.bfloat16)


class DropPath(nn.Module):
    """Stochastic depth on the gate tensor (B, 1, 1, D): per-sample Bernoulli(keep) / keep in training."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, gate: Tensor) -> Tensor:
        if not self.training or self.drop_prob == 0.0:
            return gate
        keep = 1.0 - self.drop_prob
        mask = gate.new_empty((gate.shape[0],) + (1,) * (gate.ndim - 1)).bernoulli_(keep)
        return gate * mask / keep


def modulate(z: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``z · (1 + scale) + shift``."""
    return z * (1 + scale) + shift


def _norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)


class VideoDiTBlock(nn.Module):
    """One block over h (B, T, X', D) conditioned on emb (B, E)."""

    def __init__(self, hidden_size: int, num_heads: int, *, condition_embed_dim: int, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, temporal_attention: bool = False, use_rope: bool = True,
                 temporal_kwargs: dict | None = None, cross_attention: Callable[[], nn.Module] | None = None,
                 is_causal: bool = False, adaln_zero_init: bool = True, attn_kwargs: dict | None = None, **_unused):
        super().__init__()
        d, e = hidden_size, condition_embed_dim
        self.attention = SpatialSelfAttention(d, num_heads, **(attn_kwargs or {}))
        self.norm1_modulation = AdaLNModulation(d, e, n_blocks=2, zero_init=adaln_zero_init)
        self.attn_norm = _norm(d)
        self.linear = Mlp(d, int(d * mlp_ratio))
        self.mlp_norm = _norm(d)
        if temporal_attention:
            self.temporal_attention = TemporalAttention(hidden_size=d, num_heads=num_heads, use_rope=use_rope,
                                                        is_causal=is_causal, **(temporal_kwargs or {}))
            self.temporal_attn_modulation = AdaLNModulation(d, e, zero_init=adaln_zero_init)
            self.temporal_attn_norm = _norm(d)
        else:
            self.temporal_attention = None
        if cross_attention is not None:
            self.cross_attention = cross_attention()
            self.cross_attn_modulation = AdaLNModulation(d, e, zero_init=adaln_zero_init)
            self.cross_attn_norm = _norm(d)
        else:
            self.cross_attention = None
        self.drop_path = DropPath(drop_path)
        self.context_parallel = None  # set by healda_core.distributed.context_parallel
        # ``fn(block_forward, *args)`` that checkpoints the block (healda_core.distributed.activation_checkpoint);
        # the same function object on every block, so compiled blocks share one graph
        self.checkpointing: Callable | None = None

    def forward(self, h: Float[Tensor, "b t x d"], c: Float[Tensor, "b e"], attn_kwargs: dict | None = None,
                cross_attn_kwargs: dict | None = None, temporal_attn_kwargs: dict | None = None) -> Tensor:
        if self.checkpointing is not None and torch.is_grad_enabled():
            return self.checkpointing(self._forward, h, c, attn_kwargs, cross_attn_kwargs, temporal_attn_kwargs)
        return self._forward(h, c, attn_kwargs, cross_attn_kwargs, temporal_attn_kwargs)

    def _forward(self, h: Tensor, c: Tensor, attn_kwargs: dict | None, cross_attn_kwargs: dict | None,
                 temporal_attn_kwargs: dict | None) -> Tensor:
        if self.cross_attention is not None and cross_attn_kwargs is None:
            raise ValueError("this block has cross-attention: cross_attn_kwargs are required")
        compiled = not attn_kwargs and self.context_parallel is None and use_compiled_regions(h)
        pre, post = (_compiled_regions() if compiled else (_block_pre, _block_post))
        h, z, gate, m_shift, m_scale, m_gate = pre(self, h, c, attn_kwargs)
        cross = self.cross_attention(z, **cross_attn_kwargs) if self.cross_attention is not None else None
        return post(self, h, c, cross, gate, m_shift, m_scale, m_gate, temporal_attn_kwargs)


def _block_pre(blk: VideoDiTBlock, h: Tensor, c: Tensor, attn_kwargs: dict | None) -> tuple:
    """Spatial-attention branch and the cross-attention input: ``(h, z_cross, gate_cross, mlp modulation)``."""
    b, t, x, d = h.shape
    a_shift, a_scale, a_gate, m_shift, m_scale, m_gate = blk.norm1_modulation(c)
    z = modulate(blk.attn_norm(h), a_shift, a_scale).reshape(b * t, x, d)
    h = h + blk.drop_path(a_gate) * blk.attention(z, **(attn_kwargs or {})).view(b, t, x, d)
    if blk.cross_attention is None:
        return h, None, None, m_shift, m_scale, m_gate
    shift, scale, gate = blk.cross_attn_modulation(c)
    return h, modulate(blk.cross_attn_norm(h), shift, scale), gate, m_shift, m_scale, m_gate


def _block_post(blk: VideoDiTBlock, h: Tensor, c: Tensor, cross: Tensor | None, gate: Tensor | None,
                m_shift: Tensor, m_scale: Tensor, m_gate: Tensor, temporal_attn_kwargs: dict | None) -> Tensor:
    """Cross-attention residual, temporal-attention branch (with the context-parallel reshards) and MLP branch."""
    if cross is not None:
        h = h + blk.drop_path(gate) * cross
    if blk.temporal_attention is not None:
        cp = blk.context_parallel
        h = cp.to_space_sharded(h) if cp is not None else h
        shift, scale, g = blk.temporal_attn_modulation(c)
        z = modulate(blk.temporal_attn_norm(h), shift, scale)
        h = h + blk.drop_path(g) * blk.temporal_attention(z, **(temporal_attn_kwargs or {}))
        h = cp.to_time_sharded(h) if cp is not None else h
    z = modulate(blk.mlp_norm(h), m_shift, m_scale)
    return h + blk.drop_path(m_gate) * blk.linear(z)


def use_compiled_regions(h: Tensor) -> bool:
    """Whether a block runs its two dense regions through ``torch.compile``: CUDA inference (no autograd), not
    already compiling, and :func:`~healda_core.model.compile_policy.compile_wanted`. The ragged cross-attention
    between the regions stays eager (its token count changes with every batch)."""
    return h.is_cuda and not torch.is_grad_enabled() and not torch.compiler.is_compiling() and compile_wanted()


@functools.lru_cache(maxsize=1)
def _compiled_regions() -> tuple:
    """``torch.compile`` of :func:`_block_pre` and :func:`_block_post`: fuses LayerNorm, modulation, q/k
    RMSNorm, RoPE, gating and residual adds around the GEMMs and SDPA. Blocks share the compiled code
    (module parameters are graph inputs), so a model compiles each region once."""
    opts = compile_options()
    return torch.compile(_block_pre, dynamic=False, options=opts), torch.compile(_block_post, dynamic=False, options=opts)


class VideoDiT(nn.Module):
    """Tokenizer → conditioning embedding → ``num_layers`` :class:`VideoDiTBlock` → detokenizer.

    Forward: x (B, C_in, T, X) on level_in, t (B,) → (B, C_out, T, X). Keyword arguments as the
    reference ``VideoDiT``; ``conditioning_embedder`` must be ``"edm"``.
    """

    def __init__(self, tokenizer: nn.Module, detokenizer: nn.Module, hidden_size: int, num_heads: int,
                 num_layers: int, *, emb_channels: int | None = None, noise_channels: int | None = None,
                 condition_dim: int = 0, temporal_attention: bool = False, use_rope: bool = True,
                 rope_base: float = 100, max_seq_len: int = 100, temporal_kwargs: dict | None = None,
                 cross_attention: Callable[[], nn.Module] | None = None, is_causal: bool = False,
                 attention_backend: str = "timm", layernorm_backend: str = "torch", mlp_ratio: float = 4,
                 drop_path: float = 0, drop_path_rates: list[float] | None = None,
                 conditioning_embedder: str = "edm", conditioning_embedder_kwargs: dict | None = None,
                 dit_initialization: bool = True, adaln_zero_init: bool = True, attn_kwargs: dict | None = None,
                 block_kwargs: dict | None = None):
        super().__init__()
        if conditioning_embedder != "edm":
            raise ValueError(f"only the 'edm' conditioning embedder is supported, got {conditioning_embedder!r}")
        if attention_backend not in ("timm", "sdpa") or layernorm_backend not in ("torch",):
            raise ValueError("attention_backend must be 'timm' (SDPA) and layernorm_backend 'torch'")
        emb_channels = emb_channels or 4 * hidden_size
        if drop_path_rates is None:
            drop_path_rates = [drop_path * i / max(1, num_layers - 1) for i in range(num_layers)]
        if len(drop_path_rates) != num_layers:
            raise ValueError(f"drop_path_rates length {len(drop_path_rates)} != num_layers {num_layers}")
        self.tokenizer, self.detokenizer = tokenizer, detokenizer
        self.conditioning_embedder = EDMConditionEmbedder(emb_channels, noise_channels or hidden_size, condition_dim,
                                                          **(conditioning_embedder_kwargs or {}))
        use_table = temporal_attention and use_rope
        self.temporal_rope = RotaryEmbedding1DTables(hidden_size // num_heads, max_seq_len, rope_base) if use_table else None
        self.blocks = nn.ModuleList(
            VideoDiTBlock(hidden_size, num_heads, condition_embed_dim=emb_channels, mlp_ratio=mlp_ratio,
                          drop_path=rate, temporal_attention=temporal_attention, use_rope=use_rope,
                          temporal_kwargs=temporal_kwargs, cross_attention=cross_attention, is_causal=is_causal,
                          adaln_zero_init=adaln_zero_init, attn_kwargs=attn_kwargs, **(block_kwargs or {}))
            for rate in drop_path_rates
        )
        self.cp_size, self.cp_rank = 1, 0  # frames are split over cp_size ranks under context parallelism
        if dit_initialization:
            self.initialize_weights()

    def compile_blocks(self, **kwargs) -> None:
        """``torch.compile`` every block in place (state_dict keys unchanged). Blocks share the compiled code
        (parameters are graph inputs), checkpointing included, and the ragged cross-attention op is traced into
        the graph; ``kwargs`` go to :meth:`torch.nn.Module.compile` (``options`` default: ``HEALDA_COMPILE=tuned``'s)."""
        from healda_core.model.ragged import kernel_impl

        kernel_impl()
        kwargs.setdefault("options", compile_options())
        for block in self.blocks:
            block.compile(**kwargs)

    def initialize_weights(self) -> None:
        """Xavier-uniform Linear weights with zero bias; zero every adaLN modulation (identity blocks)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if hasattr(self.detokenizer, "initialize_weights"):
            self.detokenizer.initialize_weights()
        for m in self.modules():
            if isinstance(m, AdaLNModulation) and m.zero_init:
                m.reset_zero()

    def forward(self, x: Float[Tensor, "b c t x"], t: Float[Tensor, " b"], condition: Tensor | None = None,
                attn_kwargs: dict | None = None, cross_attn_kwargs: dict | None = None,
                temporal_attn_kwargs: dict | None = None, tokenizer_kwargs: dict | None = None) -> Tensor:
        h = self.tokenizer(x, **(tokenizer_kwargs or {}))
        if h.ndim != 4:
            raise ValueError(f"tokenizer must return (B, T, X, D), got {tuple(h.shape)}")
        emb = self.conditioning_embedder(t, condition=condition)
        temporal_attn_kwargs = dict(temporal_attn_kwargs or {})
        if self.temporal_rope is not None:
            # global frame count (T_local × cp_size): RoPE positions are the frames' global indices
            cos, sin = self.temporal_rope(seq_len=h.shape[1] * self.cp_size)
            temporal_attn_kwargs.update(rope_cos=cos, rope_sin=sin)
        with sdpa_priority(h):
            for block in self.blocks:
                h = block(h, emb, attn_kwargs, cross_attn_kwargs, temporal_attn_kwargs)
        return self.detokenizer(h, emb)
