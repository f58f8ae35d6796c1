"""Issue 15.2: constraint-aware decoding. The closure of the vocabulary, the token tables over the
real SmolLM2 tokenizer, the per-row biases, the cache key of unconstrained requests (unchanged), and
the real model: with the constraints on, its words stay in the closure and the required words appear."""
import hashlib
import json
from dataclasses import asdict

import pytest
import torch

from conftest import REPO
from generators.base import Request, Sampling
from generators.constrain import Constraint, RowState, closure, constraint_for, tables_for

VOCAB = str(REPO / "prompts" / "vocab" / "default.tsv")


@pytest.fixture(scope="module")
def tok(local_backend):
    return local_backend._ensure()[1]


def test_closure_has_inflections_function_words_and_names():
    c = closure(VOCAB)
    for w in ["puppy", "puppies", "jump", "jumped", "jumping", "ran", "run", "running", "happy", "happier",
              "happily", "the", "and", "she", "lily", "mice", "mouse"]:
        assert w in c, w
    for w in ["politician", "finance", "government", "website"]:
        assert w not in c, w


def test_constraint_only_when_asked():
    slots = {"verb": "jump", "noun": "puppy", "adjective": "tiny", "name": "Zorblax", "setting": "a park"}
    assert constraint_for(slots, VOCAB, 0.0, 0.0) is None
    assert constraint_for(slots, None, 4.0, 3.0) is None
    c = constraint_for(slots, VOCAB, 4.0, 3.0)
    assert c.required == ("jump", "puppy", "tiny") and "zorblax" in c.allowed_extra


def test_unconstrained_cache_key_is_unchanged():
    """Off means today's behaviour: the request cache key of an unconstrained request is the old one."""
    r = Request(id="x", messages=({"role": "user", "content": "hi"},), sampling=Sampling(seed=3), prefill="Once")
    old = {"backend": "local", "model": "m", "api": "chat", "messages": list(r.messages), "prefill": r.prefill,
           "sampling": {k: v for k, v in asdict(r.sampling).items() if k != "min_tokens"}, "json_schema": None}
    blob = json.dumps(old, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert r.cache_key("local", "m") == hashlib.sha256(blob.encode()).hexdigest()
    c = Constraint(VOCAB, "d", 4.0, 3.0, ("jump",))
    assert Request(**{**r.__dict__, "constraint": c}).cache_key("local", "m") != r.cache_key("local", "m")


def test_row_biases(tok):
    size = len(tok)
    t = tables_for(tok, VOCAB, size)
    ids = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    c = Constraint(VOCAB, "d", vocab_bias=5.0, required_bias=2.0, required=("puppy",), allowed_extra=("zorblax",))
    st = RowState(c, t, max_tokens=100)
    logits = torch.zeros(size)
    st.bias(logits)
    dog, = ids(" dog")
    assert logits[dog] >= 2.0 - 1e-6 or logits[dog] == 0  # an allowed word start is never penalised
    pol = ids(" politician")[0]
    if t.letters[pol] not in t.prefixes:
        assert logits[pol] == -5.0
    assert logits[ids(" puppy")[0]] >= 2.0  # the required word's first token is boosted
    assert logits[ids(" Zorblax")[0]] >= 0  # a slot word is allowed even outside the vocabulary
    assert logits[ids(".")[0]] == 0 and logits[ids(",")[0]] == 0  # punctuation is neutral
    # after the required word appears, it is no longer boosted
    for x in ids(" The puppy ran."):
        st.update(x)
    assert "puppy" not in st.pending
    logits = torch.zeros(size)
    st.bias(logits)
    assert logits[ids(" puppy")[0]] <= 0


def test_sentence_bias_favours_a_full_stop_once_a_sentence_is_long(tok):
    size = len(tok)
    t = tables_for(tok, VOCAB, size)
    ids = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    dot, bang, comma = ids(".")[0], ids("!")[0], ids(",")[0]
    assert dot in t.sentence_enders and bang in t.sentence_enders and comma not in t.sentence_enders
    assert not any(".." in tok.decode([i]) for i in t.sentence_enders)  # never an ellipsis
    c = constraint_for({"verb": "run"}, VOCAB, 0.0, 0.0, sentence_bias=4.0, sentence_words=5)
    assert c is not None and c.as_key()["sentence_bias"] == 4.0
    st = RowState(c, t, max_tokens=100)

    def bias_after(text):
        for x in ids(text):
            st.update(x)
        logits = torch.zeros(size)
        st.bias(logits)
        return logits

    assert bias_after(" Once upon a time")[dot] == 0  # 4 words: not yet
    assert bias_after(" there was")[dot] == pytest.approx(4.0 * 1.2)  # 6 words: 4 x (1 + 1/5)
    assert bias_after(" a dog who liked to run")[dot] == pytest.approx(8.0)  # 12 words: capped at twice
    assert bias_after(" all day.")[dot] == 0  # the full stop starts a new sentence
    assert bias_after(' "Hi,')[comma] == 0
    # off: the key of a constraint without it is the one cached answers were stored under
    assert "sentence_bias" not in constraint_for({"verb": "run"}, VOCAB, 4.0, 0.0).as_key()


def _bias_after(c, t, tok, text):
    st = RowState(c, t, max_tokens=100)
    for x in tok(text, add_special_tokens=False)["input_ids"]:
        st.update(x)
    logits = torch.zeros(t.size)
    st.bias(logits)
    return logits


def test_echo_bias_keeps_the_model_from_finishing_a_phrase_addressed_to_the_writer(tok):
    """The instruction_echo filter's top catch ("End the story with...", 17 of 200 stories of the demo
    recipe) is stopped at its last word: after "End the", no " story" (nor the rest of "st..."); the
    same words parted by a comma are not a phrase."""
    t = tables_for(tok, VOCAB, len(tok))
    first = lambda s: tok(s, add_special_tokens=False)["input_ids"][0]  # noqa: E731
    c = constraint_for({"verb": "run"}, VOCAB, 0.0, 0.0, echo_bias=10.0)
    assert c is not None and c.as_key()["echo_bias"] == 10.0
    assert "echo_bias" not in constraint_for({"verb": "run"}, VOCAB, 4.0, 0.0).as_key()  # off: the old key
    story = first(" story")
    assert _bias_after(c, t, tok, "The dog ran home.\nEnd the")[story] == -10.0
    assert _bias_after(c, t, tok, "The dog ran home. End your")[story] == -10.0
    assert _bias_after(c, t, tok, "Mom said to write your own")[story] == -10.0
    assert _bias_after(c, t, tok, "The cat saw that the story")[first(" must")] == -10.0
    st = RowState(c, t, max_tokens=100)
    for x in tok("The dog ran.\nEnd the", add_special_tokens=False)["input_ids"] + [first(" st")]:
        st.update(x)
    logits = torch.zeros(t.size)
    st.bias(logits)
    assert st.partial == "st" and logits[tok("ory", add_special_tokens=False)["input_ids"][0]] == -10.0
    assert _bias_after(c, t, tok, "In the end, the")[story] == 0  # a comma parts the words
    assert _bias_after(c, t, tok, "The dog ran to the")[story] == 0
    assert _bias_after(c, t, tok, "They read the")[story] == 0
    assert _bias_after(c, t, tok, "The dog ran.\nEnd the")[first(" dog")] == 0  # only the phrase's last word
    # a sentence or line that starts with "End" tells the writer how to end ("End the short story", "End with")
    end_cont = tok("\nEnd", add_special_tokens=False)["input_ids"][-1]
    assert _bias_after(c, t, tok, "The dog ran home.\n")[end_cont] == -10.0
    assert _bias_after(c, t, tok, "The dog ran home.")[first(" End")] == -10.0
    assert _bias_after(c, t, tok, "That was the")[first(" end")] == 0  # "the end" is a story's own
    assert _bias_after(c, t, tok, "Max met a fri")[tok("end", add_special_tokens=False)["input_ids"][0]] == 0
    # the prefill is the start of the text: an echo phrase begun there is stopped in the answer
    st = RowState(c, t, max_tokens=100, prefill_ids=tok("The dog ran.\nEnd the", add_special_tokens=False)["input_ids"])
    logits = torch.zeros(t.size)
    st.bias(logits)
    assert logits[story] == -10.0 and st.tokens == []
    # a token that only begins the last word begins others too ("the a" -> "the apple", not "the adjective")
    assert first(" a") != first(" adjective") and _bias_after(c, t, tok, "They saw the")[first(" a")] == 0


def test_vocab_bias_penalises_what_the_junk_filter_drops(tok):
    """Symbols, emoji (whole or in byte pieces) and capitals inside a word are penalised like a word
    outside the vocabulary; prose punctuation, digits and the end of text are not. A word after a
    quote (no space before it) is judged like one after a space."""
    t = tables_for(tok, VOCAB, len(tok))
    first = lambda s: tok(s, add_special_tokens=False)["input_ids"][0]  # noqa: E731
    c = Constraint(VOCAB, "d", vocab_bias=6.0)
    after = _bias_after(c, t, tok, "Lily saw a dog")
    for junk in (" #", " *", " @", "_", " 😀", "✨"):
        assert after[first(junk)] == -6.0, junk
    for fine in (".", ",", "!", "…", "’", "“", " -", "5"):
        assert after[first(fine)] == 0, fine
    assert after[tok.eos_token_id] == 0 and after[tok.convert_tokens_to_ids("<|im_end|>")] == 0
    mid = _bias_after(c, t, tok, "Lily ate her mea")
    assert mid[first("L")] == -6.0 and mid[first("l")] == 0  # "meaL", the junk filter's odd case
    quote = _bias_after(c, t, tok, 'She said, "')
    assert quote[first("Government")] == -6.0 and quote[first("Hello")] == 0
    # an ASCII symbol is a symbol to the junk filter too
    from corpora.chars import is_symbol
    assert all(is_symbol(ch) for ch in "#*@_~|<>[]{}=+$%")


@pytest.mark.slow
def test_constrained_generation_stays_in_vocabulary(local_backend, tok):
    """The real model, strong biases: every word it writes is in the closure, and it uses the required
    words; the same requests without constraints use words outside it."""
    c = closure(VOCAB)
    slots = [{"verb": "hug", "noun": "cookie", "adjective": "tiny"}, {"verb": "jump", "noun": "frog", "adjective": "happy"}]
    msgs = lambda s: ({"role": "user", "content": f"Write a story about a {s['adjective']} {s['noun']} that likes to {s['verb']}. Use big, complicated words."},)  # noqa: E731
    def reqs(vb, rb):
        return [Request(id=f"r{i}", messages=msgs(s), prefill="Once upon a time,",
                        sampling=Sampling(temperature=0.8, top_p=0.95, max_tokens=60, seed=11 + i, repetition_penalty=1.1),
                        constraint=constraint_for(s, VOCAB, vb, rb)) for i, s in enumerate(slots)]
    import re
    words = lambda text: [w.lower() for w in re.findall(r"[A-Za-z]+", text)]  # noqa: E731
    on = local_backend.generate(reqs(50.0, 6.0))
    for s, out in zip(slots, on):
        ws = words(out.text)
        outside = [w for w in ws if w not in c and len(w) > 1]
        assert len(outside) <= 1, (outside, out.text)  # at most a word cut off by max_tokens
        assert sum(r in " ".join(ws) for r in (s["verb"], s["noun"], s["adjective"])) >= 2, out.text


@pytest.mark.slow
def test_echo_bias_in_the_real_sampler(local_backend):
    """The real model on the brink of an echoed instruction (the prefill ends "...\\nEnd the"): left
    alone it writes "story"; with echo_bias it writes something else, through the local backend's
    batched sampler with the prefill's words in the decoder's state."""
    pre = "Once upon a time, a little dog named Max found a ball. He played all day and was very happy.\nEnd the"
    msgs = ({"role": "user", "content": "Write a short story for a 3 year old. End the story with a happy ending."},)

    def answers(echo_bias):
        reqs = [Request(id=f"r{i}", messages=msgs, prefill=pre,
                        sampling=Sampling(temperature=0.8, top_p=0.95, max_tokens=4, seed=i),
                        constraint=constraint_for({}, VOCAB, 0.0, 0.0, echo_bias=echo_bias)) for i in range(6)]
        return [c.text[len(pre):] if c.text.startswith(pre) else c.text for c in local_backend.generate(reqs)]

    plain = answers(0.0)  # (no constraint at all: every bias is 0)
    assert sum(a.startswith(" story") for a in plain) >= 3, plain
    steered = answers(10.0)
    assert not any(a.lstrip().lower().startswith("story") for a in steered), steered
