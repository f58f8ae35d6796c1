"""Issue 2.4: templates, the seeded sampler, ids, and opening diversity."""
from collections import Counter

import pytest

from generators.runner import build_plan
from generators.config import GenerationConfig
from generators.templates import TemplateError, load_template, render_document, sample_item
from corpora.vocab import read_vocab
import prompts


@pytest.fixture(scope="module")
def vocab():
    return read_vocab(prompts.ROOT / "vocab" / "default.tsv")


def test_tinystories_prompt_has_required_words_and_features(vocab):
    t = load_template("tinystories")
    item = sample_item(t, vocab, "r", 1, 0)
    s = item.slots
    assert f'verb "{s["verb"]}"' in item.prompt and f'noun "{s["noun"]}"' in item.prompt
    assert f'adjective "{s["adjective"]}"' in item.prompt
    assert "3 year old" in item.prompt and "simple words" in item.prompt
    assert s["verb"] in vocab.words("VERB") and s["noun"] in vocab.words("NOUN") and s["adjective"] in vocab.words("ADJ")
    assert s["name"] in item.prompt and s["setting"] in item.prompt
    assert item.prefill == s["opening"]
    for f in s["features"]:
        assert t.constants["feature_text"][f] in item.prompt
    # features are a random subset: over many items each appears and sizes vary
    items = [sample_item(t, vocab, "r", 1, i) for i in range(300)]
    seen = Counter(f for it in items for f in it.slots["features"])
    assert set(seen) == {"Dialogue", "BadEnding", "MoralValue", "Twist", "Foreshadowing", "Conflict"}
    assert {len(it.slots["features"]) for it in items} == {0, 1, 2, 3}


def test_same_seed_same_prompts_and_ids_other_seed_differs():
    cfg = GenerationConfig(count=50, seed=3)
    a, b = build_plan(cfg, "demo"), build_plan(cfg, "demo")
    assert [(x.id, x.prompt, x.seed) for x in a] == [(x.id, x.prompt, x.seed) for x in b]
    assert len({x.id for x in a}) == 50
    c = build_plan(GenerationConfig(count=50, seed=4), "demo")
    assert [x.id for x in a] != [x.id for x in c]
    # growing the count keeps the earlier items (a bigger run extends a smaller one)
    d = build_plan(GenerationConfig(count=60, seed=3), "demo")
    assert [x.id for x in d[:50]] == [x.id for x in a]


def test_no_opening_takes_more_than_30_percent_of_1000_stories():
    items = build_plan(GenerationConfig(count=1000, seed=0), "openings")
    counts = Counter(it.prefill for it in items)
    top_share = counts.most_common(1)[0][1] / len(items)
    assert top_share <= 0.30, counts.most_common(3)
    once = sum(it.prefill.startswith("Once upon a time") for it in items) / len(items)
    assert once < 0.10


def test_instruct_variant_document_has_header(vocab):
    t = load_template("tinystories_instruct")
    item = sample_item(t, vocab, "r", 2, 7)
    assert "Summary of the story:" in item.prompt and "must include this sentence" in item.prompt
    assert "{name}" not in item.prompt
    doc = render_document(t, item.slots, "Once there was a cat.")
    lines = doc.splitlines()
    assert lines[0].startswith("Features:") and lines[1].startswith("Words:") and lines[-1] == "Story: Once there was a cat."
    assert item.slots["sentence"] in doc


def test_template_errors_name_file_and_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nprompt = "{{ oops "\n')
    with pytest.raises(TemplateError, match=r"bad.toml: prompt: Jinja syntax error"):
        load_template(str(bad))
    bad.write_text('name = "x"\nprompt = "hi"\n[slots.a]\nsource = "nope"\n')
    with pytest.raises(TemplateError, match=r"slots.a.source: unknown source 'nope'"):
        load_template(str(bad))
    with pytest.raises(TemplateError, match="file not found"):
        load_template("no_such_template")
