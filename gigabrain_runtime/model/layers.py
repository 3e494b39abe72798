"""Building blocks shared by the policy and the world model (torch).

Written to export cleanly to ONNX (static shapes, no data-dependent control flow, masks applied
with ``where`` rather than boolean indexing) and to run in bf16 on a GPU: norms, soft-capping
and softmax are computed in float32 and cast back.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# A large negative logit instead of -inf: a fully masked row then softmaxes to a uniform
# distribution over garbage rather than NaN, and the row's output is discarded by the caller.
MASK_VALUE = -2.3819763e38


class Linear(nn.Linear):
    """nn.Linear (same parameters, same maths) that multiplies a 2D view of its input.

    Exported to ONNX, a rank-2 linear is one ``Gemm(x, W, transB=1)`` reading the weight as it
    is stored. A rank-3 one becomes ``MatMul(x, Transpose(W))``, and the exporter folds each
    such transpose into a new initializer - one per use: the action expert, used once per flow
    step, would be stored ``num_flow_steps`` times (5 G extra values at the released size).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear`` on a 2D view of ``x`` (see :class:`Linear`)."""
    if x.dim() == 2:
        return F.linear(x, weight, bias)
    y = F.linear(x.reshape(-1, x.shape[-1]), weight, bias)
    return y.reshape(*x.shape[:-1], y.shape[-1])


class RMSNorm(nn.Module):
    """Gemma-style RMSNorm: ``x / rms(x) * (1 + weight)``, computed in float32."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * (1.0 + self.weight.float())).to(x.dtype)


class AdaRMSNorm(nn.Module):
    """Adaptive RMSNorm (pi0.5 / GigaBrain-0 action expert).

    ``dense(cond)`` gives (scale, shift, gate); returns ``rms(x) * (1 + scale) + shift`` and the
    gate that scales the residual branch. cond: [B, cond_dim]; x: [B, L, dim].
    """

    def __init__(self, dim: int, cond_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.dense = Linear(cond_dim, 3 * dim)
        # Identity modulation with an open gate at initialisation, so that an untrained
        # (random-weight) model still routes information through every block.
        nn.init.normal_(self.dense.weight, std=0.02 * cond_dim**-0.5)
        with torch.no_grad():
            self.dense.bias.zero_()
            self.dense.bias[2 * dim :] = 1.0

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift, gate = self.dense(cond).to(torch.float32)[:, None].chunk(3, dim=-1)
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * (1.0 + scale) + shift).to(x.dtype), gate.to(x.dtype)


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary tables for integer ``positions`` [B, L] -> cos, sin [B, 1, L, head_dim]."""
    half = head_dim // 2
    inv_freq = 1.0 / (
        theta ** (torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    )
    angles = positions.float()[..., None] * inv_freq  # [B, L, half]
    angles = torch.cat([angles, angles], dim=-1)[:, None]  # [B, 1, L, D]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE on [B, H, L, D]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    allowed: torch.Tensor | None,
    *,
    softcap: float | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """Grouped-query attention.

    q: [B, Hq, Lq, D]; k, v: [B, Hkv, Lk, D] with Hq a multiple of Hkv; ``allowed`` is a boolean
    mask broadcastable to [B, 1, Lq, Lk] (True = may attend). Logits are scaled by ``scale``
    (default D**-0.5; Gemma-2 uses query_pre_attn_scalar**-0.5). Soft-capping (Gemma-2) bounds
    the logits with ``softcap * tanh(logits / softcap)``. Returns [B, Hq, Lq, D].
    """
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
    if softcap is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    logits = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    logits = softcap * torch.tanh(logits / softcap)
    if allowed is not None:
        logits = torch.where(allowed, logits, torch.full_like(logits, MASK_VALUE))
    probs = torch.softmax(logits, dim=-1).to(v.dtype)
    return torch.matmul(probs, v)


def _fuse(linears: list[nn.Linear]) -> torch.Tensor:
    """One weight holding ``linears``' weights row after row, each linear's weight becoming a
    view of its rows: one matmul then does the work of all, the parameters (and a state dict
    loaded later, which copies into them) stay where they were, and no memory is added. Fuse
    after moving the module to its device and dtype (``.to`` copies the views apart)."""
    fused = torch.cat([m.weight.detach() for m in linears], dim=0)
    start = 0
    for m in linears:
        rows = m.weight.shape[0]
        m.weight = nn.Parameter(fused[start : start + rows], requires_grad=False)
        start += rows
    return fused


class GeGLU(nn.Module):
    """Gemma MLP: ``down(gelu_tanh(gate(x)) * up(x))``."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = Linear(width, hidden, bias=False)
        self.up_proj = Linear(width, hidden, bias=False)
        self.down_proj = Linear(hidden, width, bias=False)
        self.register_buffer("gate_up", None, persistent=False)

    def fuse(self) -> None:
        """Inference: gate and up as one matmul (:func:`fuse_projections`); again: nothing."""
        if self.gate_up is None:
            self.gate_up = _fuse([self.gate_proj, self.up_proj])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up is not None:
            gate, up = linear(x, self.gate_up).chunk(2, dim=-1)
        else:
            gate, up = self.gate_proj(x), self.up_proj(x)
        return self.down_proj(F.gelu(gate, approximate="tanh") * up)


class GQAProjection(nn.Module):
    """Bias-free q/k/v/o projections with Gemma's grouped-query head layout."""

    def __init__(self, width: int, num_heads: int, num_kv_heads: int, head_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.q_proj = Linear(width, num_heads * head_dim, bias=False)
        self.k_proj = Linear(width, num_kv_heads * head_dim, bias=False)
        self.v_proj = Linear(width, num_kv_heads * head_dim, bias=False)
        self.o_proj = Linear(num_heads * head_dim, width, bias=False)
        self.register_buffer("fused_qkv", None, persistent=False)

    def fuse(self) -> None:
        """Inference: q, k and v as one matmul (:func:`fuse_projections`); again: nothing."""
        if self.fused_qkv is None:
            self.fused_qkv = _fuse([self.q_proj, self.k_proj, self.v_proj])

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, _ = x.shape
        hq, hkv = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        if self.fused_qkv is not None:
            q, k, v = linear(x, self.fused_qkv).split([hq, hkv, hkv], dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        k = k.reshape(b, n, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = v.reshape(b, n, self.num_kv_heads, self.head_dim).transpose(1, 2)
        return q, k, v

    def out(self, heads: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = heads.shape
        return self.o_proj(heads.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim))


def fuse_projections(module: nn.Module) -> int:
    """Fuse every grouped-query attention's q/k/v and every GeGLU's gate/up projections in
    ``module`` into one matmul each (inference: the fused weights are not trained). Returns how
    many were fused. The outputs agree with the unfused module to float rounding."""
    n = 0
    for m in module.modules():
        if isinstance(m, (GQAProjection, GeGLU)):
            m.fuse()
            n += 1
    return n


class EmbodimentSpecificLinear(nn.Module):
    """A linear layer with one weight set per embodiment id (as GigaBrain-0 does).

    ``x``: [B, ..., in_dim], ``embodiment_id``: int64 [B] -> [B, ..., out_dim].
    """

    def __init__(self, num_embodiments: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_embodiments, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(num_embodiments, out_dim))
        nn.init.normal_(self.weight, std=in_dim**-0.5)

    def forward(self, x: torch.Tensor, embodiment_id: torch.Tensor) -> torch.Tensor:
        w = self.weight[embodiment_id]  # [B, in, out]
        b = self.bias[embodiment_id]  # [B, out]
        if w.dtype != x.dtype:  # a no-op cast would be exported (and folded) once per call
            w, b = w.to(x.dtype), b.to(x.dtype)
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        y = torch.bmm(flat, w) + b[:, None]
        return y.reshape(*x.shape[:-1], w.shape[-1])


def sinusoidal_embedding(
    t: torch.Tensor | float, dim: int, min_period: float, max_period: float
) -> torch.Tensor:
    """Sine-cosine embedding of scalar times over log-spaced periods -> float32 [B, dim] for
    ``t`` [B], or [1, dim] for a Python float (a constant of the traced graph).

    Computed in float64 from the float32 time and rounded once, as GigaBrain-0 does: in float32
    the 4 ms period's phase alone is off by up to ~1e-5 rad at t = 1, which moves a chunk
    measurably. A float time (the fixed sampling schedule) is computed here in NumPy, so an
    exported graph holds the result as a float32 constant and no float64 arithmetic.
    """
    if isinstance(t, (int, float)):
        fraction = np.linspace(0.0, 1.0, dim // 2, dtype=np.float64)
        period = min_period * (max_period / min_period) ** fraction
        angle = (1.0 / period * 2 * math.pi)[None, :] * np.float64(np.float32(t))
        emb = np.concatenate([np.sin(angle), np.cos(angle)], axis=-1).astype(np.float32)
        return torch.from_numpy(emb)
    fraction = torch.linspace(0.0, 1.0, dim // 2, device=t.device, dtype=torch.float64)
    period = min_period * (max_period / min_period) ** fraction
    angle = (1.0 / period * 2 * math.pi)[None, :] * t.to(torch.float64)[:, None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1).to(torch.float32)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """DiT adaptive-norm modulation; shift/scale are [B, width], x is [B, L, width]."""
    return x * (1.0 + scale[:, None]) + shift[:, None]
