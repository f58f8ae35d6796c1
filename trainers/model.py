"""A small Llama-style decoder in plain torch, readable in one sitting (after nanoGPT and llama2.c).

RMSNorm, rotary positions, SwiGLU feed-forward, grouped-query causal attention through
`scaled_dot_product_attention`, and an output layer tied to the token embedding. No dropout and
no biases: tiny models trained for a fixed token budget do not need them, and without dropout a
resumed run follows the uninterrupted one number for number.
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 4096
    dim: int = 288
    n_layers: int = 6
    n_heads: int = 6
    n_kv_heads: int | None = None  # None = n_heads (plain multi-head attention)
    hidden_dim: int | None = None  # None = llama2.c's rule: 2/3 of 4*dim, rounded up to multiple_of
    multiple_of: int = 32
    context: int = 256
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def ffn_dim(self) -> int:
        if self.hidden_dim:
            return self.hidden_dim
        h = int(2 * (4 * self.dim) / 3)
        return self.multiple_of * ((h + self.multiple_of - 1) // self.multiple_of)

    def to_dict(self) -> dict:
        return asdict(self)


# Shapes, not vocabularies: the vocabulary comes from the tokenizer of the experiment. The
# parameter counts in the names are at the vocabulary given beside each preset (llama2.c's).
PRESETS: dict[str, tuple[ModelConfig, str]] = {
    "tiny": (ModelConfig(vocab_size=512, dim=64, n_layers=2, n_heads=4, context=128, multiple_of=16),
             "~0.13M at vocab 512: tests and the README's demo ablation"),
    "260k": (ModelConfig(vocab_size=512, dim=64, n_layers=5, n_heads=8, n_kv_heads=4, context=512, multiple_of=4),
             "llama2.c stories260K: ~0.26M at vocab 512"),
    "1m": (ModelConfig(vocab_size=2048, dim=128, n_layers=4, n_heads=4, context=256),
           "~1.1M at vocab 2048"),
    "7m": (ModelConfig(vocab_size=4096, dim=288, n_layers=6, n_heads=6, context=256),
           "stories15M's shape at vocab 4096: ~7.2M (the speed benchmark's model)"),
    "15m": (ModelConfig(vocab_size=32000, dim=288, n_layers=6, n_heads=6, context=256),
            "llama2.c stories15M: ~15M at vocab 32000"),
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r} (one of {', '.join(PRESETS)})")
    return replace(PRESETS[name][0], **{k: v for k, v in overrides.items() if v is not None})


class _RMSNormFn(torch.autograd.Function):
    """RMSNorm with the fused forward kernel and a hand-written backward: on a CPU the composite
    backward of F.rms_norm makes about twice as many passes over memory (1.6x slower forward and
    backward at the 7M preset's shape, measured)."""

    @staticmethod
    def forward(ctx, x, weight, eps):
        y, rstd = torch.ops.aten._fused_rms_norm(x, [x.shape[-1]], weight, eps)
        ctx.save_for_backward(x, weight, rstd)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, rstd = ctx.saved_tensors
        xh = x * rstd  # the normalized input
        t = g * xh
        dw = t.reshape(-1, x.shape[-1]).sum(0)
        dot = (t @ w).unsqueeze(-1) / x.shape[-1]  # mean over features of g * w * xh
        dx = torch.addcmul(g * w, xh, dot, value=-1).mul_(rstd)
        return dx, dw, None


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # eager fp32 on a CPU: the fused kernel above (1.6x); compiled, on a GPU or under autocast:
        # the public F.rms_norm, which torch.compile fuses with its neighbours
        if (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.compiler.is_compiling()
                and hasattr(torch.ops.aten, "_fused_rms_norm")):
            return _RMSNormFn.apply(x, self.weight, self.eps)
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def _onednn_works() -> bool:
    """Whether this torch has oneDNN's fp32 linear kernel and it computes x @ w.T."""
    try:
        x, w = torch.arange(6.0).view(2, 3), torch.arange(12.0).view(4, 3)
        return (torch.backends.mkldnn.is_available()
                and torch.equal(torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], ""), x @ w.t()))
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def cpu_vendor() -> str:
    """The CPU's vendor as Linux reports it ("GenuineIntel", "AuthenticAMD"), else ""."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("vendor_id")), "")
    except OSError:
        return ""


def matmul_library(vendor: str, onednn: bool, override: str | None = None) -> str:
    """The library of the compiled CPU step's fp32 products: "onednn" or "mkl" (torch's own).
    Intel's MKL is the faster on Intel CPUs, oneDNN on AMD's (README: "oneDNN or MKL"), where MKL
    ran the 7M preset's (8192 x 288) @ (288 x n) products at 50-108 GFLOP/s against oneDNN's
    105-132; on an Intel Xeon (AVX-512) MKL ran them 9-15% faster than oneDNN and the compiled
    step 1.08x (paired median). `TINYSCHOOL_MATMUL=mkl|onednn` overrides (for measuring)."""
    if override == "mkl" or not onednn:
        return "mkl"
    return "onednn" if override == "onednn" or vendor != "GenuineIntel" else "mkl"


ONEDNN_AVAILABLE = _onednn_works()
_ONEDNN = matmul_library(cpu_vendor(), ONEDNN_AVAILABLE, os.environ.get("TINYSCHOOL_MATMUL")) == "onednn"


def onednn_matmul_t(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x @ w.T for fp32 CPU tensors by oneDNN (where ONEDNN_AVAILABLE)."""
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), w.contiguous(), None, "none", [], "")


def matmul_t(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x @ w.T for fp32 CPU tensors x (..., k) and w (n, k), by this CPU's faster library (matmul_library)."""
    if _ONEDNN:
        return onednn_matmul_t(x, w)
    return x @ w.t()


@torch.library.custom_op("tinyschool::cpu_linear", mutates_args=())
def cpu_linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """F.linear(x, w) without bias, fp32 on a CPU: forward and input gradient by oneDNN (matmul_t;
    used where oneDNN is this CPU's faster library), the weight gradient by torch's own matmul (as
    fast at its shape). An opaque call for torch.compile, which would otherwise send the products to MKL."""
    return matmul_t(x, w)


@cpu_linear.register_fake
def _(x, w):
    return x.new_empty(*x.shape[:-1], w.shape[0])


def _cpu_linear_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _cpu_linear_backward(ctx, g):
    x, w = ctx.saved_tensors
    dx = cpu_linear(g, w.t())  # g @ w (matmul_t makes w.t() contiguous)
    dw = g.reshape(-1, g.shape[-1]).t() @ x.reshape(-1, x.shape[-1])
    return dx, dw


cpu_linear.register_autograd(_cpu_linear_backward, setup_context=_cpu_linear_setup)


class Linear(nn.Linear):
    """nn.Linear without bias. Compiled on a CPU in fp32 where oneDNN is the faster library (AMD; see
    matmul_library) it goes through cpu_linear: the compiled 7M training step 1.12x (paired median
    of 10 rounds; README). Eager, small models' products (dim 64) are slower in oneDNN, so it stays
    F.linear; on Intel CPUs it is F.linear always (MKL)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (_ONEDNN and torch.compiler.is_compiling() and x.device.type == "cpu" and x.dtype == torch.float32
                and not torch.is_autocast_enabled("cpu")):
            return cpu_linear(x, self.weight)
        return F.linear(x, self.weight)


@torch.library.custom_op("tinyschool::linear_cross_entropy", mutates_args=())
def _linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, rows: int
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, d loss/d h, d loss/d weight) of cross_entropy(h @ weight.T, targets), a block of rows at
    a time: the (rows x vocabulary) logits never exist whole, so each block's logits, log-softmax and
    gradient stay in the CPU's cache, and the gradients need no second pass (the backward only scales
    them). An opaque call for torch.compile, which runs it as these eager kernels."""
    counted = (targets != -1).to(h.dtype)
    scale = (counted / counted.sum())[:, None]  # d(mean loss)/d(token loss); 0 for targets of -1
    safe = targets.clamp(min=0)
    dh, dw, logp_at = torch.empty_like(h), torch.zeros_like(weight), h.new_empty(h.shape[0])
    for s in range(0, h.shape[0], rows):
        e = min(s + rows, h.shape[0])
        hs, r, t = h[s:e], torch.arange(e - s), safe[s:e]
        logp = torch.log_softmax(matmul_t(hs, weight), 1)
        logp_at[s:e] = logp[r, t]
        g = logp.exp_()  # softmax; minus one at the target is the gradient of the token's loss
        g[r, t] -= 1
        torch.mm(g, weight, out=dh[s:e]).mul_(scale[s:e])
        dw.addmm_(g.t(), hs * scale[s:e])
    return -(logp_at[:, None] * scale).sum(), dh, dw


@_linear_cross_entropy.register_fake
def _(h, weight, targets, rows):
    return h.new_empty(()), torch.empty_like(h), torch.empty_like(weight)


def _linear_cross_entropy_setup(ctx, inputs, output):
    ctx.save_for_backward(output[1], output[2])


def _linear_cross_entropy_backward(ctx, grad, _grad_dh, _grad_dw):
    dh, dw = ctx.saved_tensors
    return dh * grad, dw * grad, None, None


_linear_cross_entropy.register_autograd(_linear_cross_entropy_backward, setup_context=_linear_cross_entropy_setup)


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, rows: int = 512) -> torch.Tensor:
    """F.cross_entropy(h @ weight.T, targets, ignore_index=-1) for h (N, dim), weight (vocab, dim),
    targets (N,), with the gradients computed in the forward, `rows` rows at a time: ~10% faster
    than the compiled plain formula at the 7M preset on a CPU (measured; README), and no
    (N x vocab) logits kept for the backward (126 MB a step at batch 32)."""
    return _linear_cross_entropy(h, weight, targets, rows)[0]


def rope_tables(head_dim: int, context: int, theta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """cos and sin of every (position, frequency), laid out for the "rotate half" form, and the
    (head_dim x head_dim) matrix R with x @ R = rotate_half(x) = cat(-x2, x1)."""
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(context, dtype=torch.float32), freqs)  # (context, head_dim/2)
    h = head_dim // 2
    rot = torch.zeros(head_dim, head_dim)
    rot[torch.arange(h) + h, torch.arange(h)] = -1.0
    rot[torch.arange(h), torch.arange(h) + h] = 1.0
    return torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1), rot


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    # x: (B, T, heads, hd), cos/sin: (T, 1, hd). Eager, the rotation of the two halves is written
    # as a tiny matmul instead of slices and a concatenation: on a CPU that is ~1.5x faster,
    # forward and backward, because it makes no copies. Compiled, the slices are better: inductor
    # fuses them with the products into one loop, where the matmul stays a separate bmm. The
    # tables take x's dtype, so that under bf16 autocast q and k stay bf16 (flash attention).
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    if torch.compiler.is_compiling():
        h = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., h:], x[..., :h]), -1) * sin
    return x * cos + (x @ rot.to(x.dtype)) * sin


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv = cfg.n_heads, cfg.kv_heads
        self.head_dim = cfg.dim // cfg.n_heads
        self.wqkv = Linear(cfg.dim, (cfg.n_heads + 2 * self.n_kv) * self.head_dim)
        self.wo = Linear(cfg.dim, cfg.dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        H, K = self.n_heads, self.n_kv
        # split, not slicing: the backward of a split is one concatenation, that of a slice a
        # zero-filled full-size gradient per slice
        qk, v = self.wqkv(x).view(B, T, H + 2 * K, self.head_dim).split([H + K, K], dim=2)
        q, k = apply_rope(qk, *rope).split([H, K], dim=2)  # queries and keys rotated in one go
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, enable_gqa=K != H)
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x), with w1 and w3 as one matmul."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w13 = Linear(cfg.dim, 2 * cfg.ffn_dim)
        self.w2 = Linear(cfg.ffn_dim, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w13(x).chunk(2, dim=-1)
        return self.w2(F.silu(a) * b)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn = FeedForward(cfg)

    def forward(self, x, rope, mask=None):
        x = x + self.attn(self.attn_norm(x), rope, mask)
        return x + self.ffn(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.dim % cfg.n_heads or (cfg.dim // cfg.n_heads) % 2:
            raise ValueError(f"dim {cfg.dim} must split into {cfg.n_heads} heads of an even size")
        if cfg.n_heads % cfg.kv_heads:
            raise ValueError(f"n_heads {cfg.n_heads} must be a multiple of n_kv_heads {cfg.kv_heads}")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        cos, sin, rot = rope_tables(cfg.dim // cfg.n_heads, cfg.context, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.register_buffer("rope_rot", rot, persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith(("wo.weight", "w2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied embedding counts once

    def flops_per_token(self, context: int | None = None) -> int:
        """nanoGPT's estimate_mfu: 6N for the matmuls plus 12*layers*dim*context for attention."""
        T = context or self.cfg.context
        return 6 * self.num_params() + 12 * self.cfg.n_layers * self.cfg.dim * T

    def hidden(self, idx: torch.Tensor, pos: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids (B, T) -> the final normed hidden states (B, T, dim), before the output layer.
        By default token t sits at position t and sees tokens 0..t (causal). For several sequences
        packed into one row (a prefix tree: trainers/probe.py) give each token's position `pos`
        (B, T) and what it may see, `mask` (B, 1, T, T) bool, True = attend."""
        T = idx.shape[1]
        if pos is None:
            rope = (self.rope_cos[:T, None, :], self.rope_sin[:T, None, :], self.rope_rot)
        else:
            rope = (self.rope_cos[pos].unsqueeze(2), self.rope_sin[pos].unsqueeze(2), self.rope_rot)
        x = self.embed(idx)
        for layer in self.layers:
            x = layer(x, rope, mask)
        return self.norm(x)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) -> logits (B, T, vocab)."""
        return F.linear(self.hidden(idx), self.embed.weight)  # tied output layer

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the next tokens; targets of -1 are not counted."""
        h = self.hidden(idx)
        if h.device.type == "cpu" and h.dtype == torch.float32 and h.requires_grad \
                and not torch.is_autocast_enabled("cpu"):
            return linear_cross_entropy(h.reshape(-1, h.size(-1)), self.embed.weight, targets.reshape(-1))
        logits = F.linear(h, self.embed.weight)  # tied output layer
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.8, top_k: int | None = 50,
                 generator: torch.Generator | None = None, stop_token: int | None = None) -> torch.Tensor:
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.cfg.context:])[:, -1, :].float()
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat((idx, nxt), dim=1)
            if stop_token is not None and bool((nxt == stop_token).all()):
                break
        return idx


def compile_unavailable(device: torch.device) -> str | None:
    """Why torch.compile cannot run here (one line), or None when it can: inductor writes C++ for a
    CPU (a C++ compiler is needed) and Triton for a GPU."""
    if device.type == "cpu":
        cxx = [c for c in (os.environ.get("CXX"), "g++", "c++", "clang++") if c and shutil.which(c)]
        return None if cxx else "no C++ compiler found (install g++ or set CXX), so torch.compile is off"
    if device.type == "cuda":
        return None if importlib.util.find_spec("triton") else "Triton is not installed, so torch.compile is off"
    return f"torch.compile is not used on {device.type}"


def training_loss(model: Transformer, compile: bool) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """model.loss, or the same compiled by torch.compile: inductor fuses the norms, rotary
    positions and SwiGLU (and, on a GPU, the cross-entropy) into a few kernels (1.36x the eager training step of the
    7M preset on 2 CPU cores, measured side by side; README). Compiled once per process and shape (a second sequence
    length makes it compile once more, for any length); the compiled C++ is cached on disk by
    torch (`TORCHINDUCTOR_CACHE_DIR`), so a new run of the same model starts faster."""
    return torch.compile(model.loss) if compile else model.loss


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep freed memory for reuse instead of handing it back to the
    system: a training step frees and re-allocates the same large activations every step, and by
    default blocks over 32 MB (and a heap top over 64 MB) go back to the kernel and come back as
    fresh pages, each one a page fault and a zeroing. On the 7M preset's CPU step that is ~20,000
    page faults a step; kept, ~600, and the step ~2-5% faster (paired medians 0.98 and 0.95 over 8
    and 12 alternating rounds; README). Process-wide and affects speed only, never a number. Returns
    whether it took effect (glibc on Linux; elsewhere it does nothing)."""
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1))
