import platform
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import REPO
from trainers.model import PRESETS, Transformer, preset
from trainers.tokenizer import EOT, encode_many, eot_id, load_tokenizer, train_tokenizer


def test_presets_span_the_llama2c_sizes():
    n = {name: Transformer(cfg).num_params() for name, (cfg, _) in PRESETS.items() if name != "15m"}
    assert 250_000 <= n["260k"] <= 270_000  # llama2.c stories260K
    assert 7_000_000 <= n["7m"] <= 7_300_000  # the benchmark's model: dim 288, 6 layers, vocab 4096
    with torch.device("meta"):
        assert 14_500_000 <= Transformer(PRESETS["15m"][0]).num_params() <= 15_500_000  # stories15M


def test_attention_is_causal_and_output_is_tied():
    torch.manual_seed(0)
    m = Transformer(preset("260k", vocab_size=64, context=32))  # grouped-query: 8 heads, 4 kv heads
    assert m.embed.weight.data_ptr() == dict(m.named_parameters())["embed.weight"].data_ptr()
    assert not any("output" in k or "lm_head" in k for k in m.state_dict())
    x = torch.randint(0, 64, (2, 16))
    y = x.clone()
    y[:, 10:] = (y[:, 10:] + 1) % 64
    a, b = m(x), m(y)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-5)
    assert not torch.allclose(a[:, 10:], b[:, 10:], atol=1e-3)


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    m = Transformer(preset("tiny", vocab_size=32, context=16))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, fused=True)
    x = torch.arange(17).remainder(8).repeat(4, 1)
    first = None
    for _ in range(30):
        loss = m.loss(x[:, :-1], x[:, 1:])
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert loss.item() < first / 3


def test_tokenizer_is_byte_level_and_deterministic(tmp_path):
    texts = [f"Once upon a time, a {w} dog ran to the park. Café déjà vu!" for w in ("big", "small", "red")] * 20
    a = train_tokenizer(texts, 300, tmp_path / "a.json")
    train_tokenizer(texts, 300, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    tok = load_tokenizer(tmp_path / "a.json")
    assert tok.token_to_id(EOT) == eot_id(a)
    odd = "zebra 🦓 naïve"  # never seen: bytes still round-trip, no unknown token
    ids = encode_many(tok, [odd])[0]
    assert tok.decode(ids.tolist()) == odd
    assert tok.get_vocab_size() <= 300


def test_rope_depends_only_on_relative_position():
    from trainers.model import apply_rope, rope_tables

    cos, sin, rot = rope_tables(8, 32, 10000.0)
    torch.manual_seed(1)
    q, k = torch.randn(8), torch.randn(8)
    at = lambda v, i: apply_rope(v.view(1, 1, 1, 8), cos[i].view(1, 1, 8), sin[i].view(1, 1, 8), rot).view(8)  # noqa: E731
    assert torch.dot(at(q, 5), at(k, 2)) == pytest.approx(torch.dot(at(q, 20), at(k, 17)).item(), abs=1e-5)
    assert torch.dot(at(q, 5), at(k, 2)) != pytest.approx(torch.dot(at(q, 5), at(k, 4)).item(), abs=1e-3)
    assert torch.allclose(at(q, 0), q)  # position 0 is not rotated


def test_hand_written_rmsnorm_backward_matches_autograd():
    from trainers.model import RMSNorm

    torch.manual_seed(0)
    norm = RMSNorm(16, 1e-5)
    with torch.no_grad():
        norm.weight.mul_(torch.rand(16) + 0.5)
    x = torch.randn(3, 5, 16, requires_grad=True)
    g = torch.randn(3, 5, 16)
    norm(x).backward(g)
    ours = (x.grad.clone(), norm.weight.grad.clone())
    x.grad, norm.weight.grad = None, None
    torch.nn.functional.rms_norm(x, (16,), norm.weight, 1e-5).backward(g)
    assert torch.allclose(ours[0], x.grad, atol=1e-5) and torch.allclose(ours[1], norm.weight.grad, atol=1e-5)


def test_rope_matches_the_rotate_half_formula_forward_and_gradient():
    from trainers.model import apply_rope, rope_tables

    cos, sin, rot = rope_tables(8, 16, 10000.0)
    cos, sin = cos[:, None, :], sin[:, None, :]
    torch.manual_seed(2)
    x = torch.randn(2, 16, 3, 8, requires_grad=True)
    g = torch.randn(2, 16, 3, 8)
    apply_rope(x, cos, sin, rot).backward(g)
    ours = x.grad.clone()
    x.grad = None
    x1, x2 = x[..., :4], x[..., 4:]
    plain = x * cos + torch.cat([-x2, x1], -1) * sin  # llama's rotate_half form
    plain.backward(g)
    assert torch.allclose(apply_rope(x, cos, sin, rot), plain, atol=1e-6)
    assert torch.allclose(ours, x.grad, atol=1e-6)


def test_rmsnorm_matches_the_plain_formula():
    from trainers.model import RMSNorm

    torch.manual_seed(3)
    norm = RMSNorm(16, 1e-5)
    with torch.no_grad():
        norm.weight.mul_(torch.rand(16) + 0.5)
    x = torch.randn(4, 16, requires_grad=True)
    plain = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * norm.weight
    assert torch.allclose(norm(x), plain, atol=1e-5)


def test_swiglu_is_w2_of_silu_w1_times_w3():
    from trainers.model import FeedForward

    torch.manual_seed(4)
    cfg = preset("tiny", vocab_size=32)
    ff = FeedForward(cfg)
    w1, w3 = ff.w13.weight.chunk(2, dim=0)
    x = torch.randn(3, cfg.dim)
    plain = (torch.nn.functional.silu(x @ w1.T) * (x @ w3.T)) @ ff.w2.weight.T
    assert torch.allclose(ff(x), plain, atol=1e-5)


def test_any_sequence_length_up_to_the_context():
    torch.manual_seed(0)
    m = Transformer(preset("tiny", vocab_size=32, context=64))
    for B, T in ((16, 8), (4, 32), (2, 64)):  # batch x length constant, as variable-length curricula make them
        x = torch.randint(0, 32, (B, T + 1))
        loss = m.loss(x[:, :-1], x[:, 1:])
        loss.backward()
        assert loss.isfinite() and m.embed.weight.grad.isfinite().all()


@pytest.mark.slow
def test_compiled_training_loss_matches_the_plain_one_forward_and_gradient():
    from trainers.model import compile_unavailable, training_loss

    if compile_unavailable(torch.device("cpu")):
        pytest.skip(compile_unavailable(torch.device("cpu")))
    torch.manual_seed(0)
    m = Transformer(preset("tiny", vocab_size=64, context=32))
    x = torch.randint(0, 64, (4, 33))
    plain = m.loss(x[:, :-1], x[:, 1:])
    plain.backward()
    want = {k: p.grad.clone() for k, p in m.named_parameters()}
    m.zero_grad(set_to_none=True)
    fast = training_loss(m, compile=True)(x[:, :-1], x[:, 1:])  # the compiled path: plain F.rms_norm, fused by inductor
    fast.backward()
    assert fast.item() == pytest.approx(plain.item(), rel=1e-5)
    for k, p in m.named_parameters():
        assert torch.allclose(p.grad, want[k], atol=1e-5, rtol=1e-4), k


def test_cpu_linear_matches_f_linear_forward_and_gradient():
    from trainers.model import cpu_linear, matmul_t

    torch.manual_seed(0)
    x0, w0 = torch.randn(3, 50, 40), torch.randn(70, 40)
    assert torch.allclose(matmul_t(x0[0], w0), x0[0] @ w0.t(), atol=1e-5)
    got, want = [], []
    for fn, out in ((cpu_linear, got), (F.linear, want)):
        x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
        y = fn(x, w)
        (y * torch.linspace(-1, 1, 70)).sum().backward()
        out += [y.detach(), x.grad, w.grad]
    for a, b in zip(got, want):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-4, rtol=1e-5)
    torch.library.opcheck(cpu_linear, (x0, w0))  # its fake (shape) function and autograd registration


def test_the_matmul_library_is_oneDNN_on_amd_and_mkl_on_intel():
    from trainers.model import matmul_library

    assert matmul_library("AuthenticAMD", True) == "onednn" and matmul_library("GenuineIntel", True) == "mkl"
    assert matmul_library("", True) == "onednn"  # not Linux, or a vendor not named: oneDNN where torch has it
    assert matmul_library("AuthenticAMD", False) == "mkl"  # no oneDNN kernel in this torch
    assert matmul_library("GenuineIntel", True, "onednn") == "onednn" and matmul_library("AuthenticAMD", True, "mkl") == "mkl"
    assert matmul_library("AuthenticAMD", False, "onednn") == "mkl"  # cannot be forced where it is missing


def test_compiled_linear_layers_go_through_cpu_linear(monkeypatch):
    from trainers import model as tm

    if not tm.ONEDNN_AVAILABLE:
        pytest.skip("this torch has no oneDNN linear kernel; the layers stay F.linear")
    monkeypatch.setattr(tm, "_ONEDNN", True)  # as on an AMD CPU, whatever this one is
    graphs = []

    def keep(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    m = Transformer(preset("tiny", vocab_size=64, context=32))
    x = torch.randint(0, 64, (2, 33))
    torch.compile(m.loss, backend=keep)(x[:, :-1], x[:, 1:]).backward()
    targets = [str(n.target) for g in graphs for n in g.graph.nodes if n.op == "call_function"]
    assert targets.count("tinyschool.cpu_linear.default") == 4 * m.cfg.n_layers  # wqkv, wo, w13, w2 per layer
    # the output layer is the fused cross-entropy, an op of the same graph (no graph break around it)
    assert targets.count("tinyschool.linear_cross_entropy.default") == 1 and len(graphs) == 1
    assert not any("linear" in t and t not in ("tinyschool.cpu_linear.default", "tinyschool.linear_cross_entropy.default")
                   for t in targets)


def test_linear_cross_entropy_matches_the_plain_formula_forward_and_gradient():
    from trainers.model import linear_cross_entropy

    torch.manual_seed(0)
    h0, w0 = torch.randn(1000, 24), torch.randn(97, 24)
    targets = torch.randint(0, 97, (1000,))
    targets[::7] = -1  # not counted, as ignore_index=-1
    for rows in (1, 64, 333, 1000, 4096):  # blocks that do and do not divide the rows
        got, want = [], []
        for fn, out in ((lambda h, w: linear_cross_entropy(h, w, targets, rows), got),
                        (lambda h, w: F.cross_entropy(F.linear(h, w), targets, ignore_index=-1), want)):
            h, w = h0.clone().requires_grad_(), w0.clone().requires_grad_()
            loss = fn(h, w)
            (loss * 3.0).backward()  # the incoming gradient scales both
            out += [loss.detach(), h.grad, w.grad]
        for a, b in zip(got, want):
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), rows


def test_training_loss_uses_the_fused_cross_entropy_with_the_tied_embedding():
    torch.manual_seed(0)
    m = Transformer(preset("tiny", vocab_size=64, context=32))
    x = torch.randint(0, 64, (4, 33))
    y = x[:, 1:].clone()
    y[0, :5] = -1
    fused = m.loss(x[:, :-1], y)  # a CPU in fp32 with gradients: the fused path
    fused.backward()
    got = {k: p.grad.clone() for k, p in m.named_parameters()}
    m.zero_grad(set_to_none=True)
    plain = F.cross_entropy(m(x[:, :-1]).view(-1, 64), y.reshape(-1), ignore_index=-1)
    plain.backward()
    assert fused.item() == pytest.approx(plain.item(), rel=1e-6)
    for k, p in m.named_parameters():  # the embedding's gradient: its lookups and the output layer's
        assert torch.allclose(got[k], p.grad, atol=1e-6, rtol=1e-5), k
    with torch.no_grad():  # evaluation: the plain formula, no gradients computed
        assert m.loss(x[:, :-1], y).item() == pytest.approx(plain.item(), rel=1e-6)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


KEEP_MEMORY_PROBE = """
import resource
import torch
from trainers.model import keep_freed_memory
def faults(n=6):  # page faults of a training-step-like pattern: a 64 MB activation made, used, freed
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        torch.ones(16 << 20).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
faults()
before = faults()
kept = keep_freed_memory()
faults()
faults()
print(kept, before, faults())
"""


@pytest.mark.skipif(not (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"),
                    reason="keep_freed_memory acts on glibc's allocator only")
def test_keep_freed_memory_stops_the_page_faults_of_reallocated_activations():
    r = subprocess.run([sys.executable, "-c", KEEP_MEMORY_PROBE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    kept, before, after = r.stdout.split()
    # by default each 64 MB block comes back from the kernel as 16,384 fresh pages; kept, it is reused
    # (the heap may still grow once in a while: 0 or one block's pages, measured, against six)
    assert kept == "True" and int(before) > 6 * 10_000 and int(after) < int(before) // 4, r.stdout


@cuda
def test_cuda_bf16_attention_uses_the_flash_kernel():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    m = Transformer(preset("7m", vocab_size=512)).cuda()
    x = torch.randint(0, 512, (4, 257), device="cuda")
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION), torch.autocast("cuda", dtype=torch.bfloat16):  # flash only: raises otherwise
        loss = m.loss(x[:, :-1], x[:, 1:])
    loss.backward()
    assert loss.isfinite() and m.embed.weight.grad.isfinite().all()
