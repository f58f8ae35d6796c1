"""Issue 2.5: the embedded local backend (the real SmolLM2-135M on the CPU; a few prompts, few tokens)."""
import pytest

from generators.base import Request, Sampling
from generators.registry import make_backend
from generators.base import BackendError

pytestmark = pytest.mark.slow


def req(i, seed, max_tokens=12, **kw):
    s = Sampling(temperature=0.9, top_p=0.95, max_tokens=max_tokens, seed=seed, repetition_penalty=1.1,
                 stop=kw.pop("stop", ()))
    return Request(id=f"r{i}", messages=({"role": "user", "content": f"Tell a tiny story about animal number {i}."},),
                   sampling=s, **kw)


def test_batch_completions_and_seeds(local_backend):
    reqs = [req(i, seed=100 + i) for i in range(5)]
    out = local_backend.generate(reqs)
    assert [c.id for c in out] == [r.id for r in reqs]
    for c in out:
        assert c.ok and c.text.strip()
        assert 0 < c.completion_tokens <= 12 and c.prompt_tokens > 10
        assert c.finish_reason in ("stop", "length")
    # same seed, same text, whatever else is in the batch
    again = local_backend.generate([reqs[3], req(9, seed=5), reqs[0]])
    assert again[0].text == out[3].text and again[2].text == out[0].text
    # another seed, another sample
    other = local_backend.generate([req(3, seed=999)])
    assert other[0].text != out[3].text


def test_prefill_stop_and_length(local_backend):
    c = local_backend.generate([req(0, seed=1, max_tokens=6, prefill="One rainy day,")])[0]
    assert c.text.startswith("One rainy day,") and c.finish_reason == "length" and c.completion_tokens == 6
    greedy = Request(id="g", messages=({"role": "user", "content": "Count: one, two, three, four, five, six"},),
                     sampling=Sampling(temperature=0.0, max_tokens=30, seed=0, stop=("five",)))
    g = local_backend.generate([greedy])[0]
    assert "five" not in g.text and g.finish_reason == "stop"


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        make_backend("nope")


def test_min_tokens_holds_back_the_end_of_text(local_backend):
    """A question answered in a few words stops early; with min_tokens it does not stop before."""
    ask = lambda **kw: Request(id=f"q{kw}", messages=({"role": "user", "content": "Answer with one word: what colour is the sky?"},),  # noqa: E731
                               sampling=Sampling(temperature=0.0, max_tokens=30, seed=1, **kw))
    short, held = local_backend.generate([ask(), ask(min_tokens=20)])
    assert short.finish_reason == "stop" and short.completion_tokens < 20  # "The sky is a shade of blue."
    assert held.completion_tokens >= 20 and held.text.startswith(short.text)
    assert ask().cache_key("local", "m") != ask(min_tokens=20).cache_key("local", "m")
