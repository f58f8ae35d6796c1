"""Issue 15.3-15.5: junk-proof cleaning that keeps good children's stories, best-of-k selection and
trimming a length-cut story, on real Parquet corpora through the real annotate stage."""
import json
from pathlib import Path

import pytest

from conftest import REPO
from corpora import Corpus, raw_table
from corpora.query import query_arrow
from filters.base import Resources
from filters.config import FilterConfig
from filters.registry import build_annotators
from filters.select import SelectConfig, select_best
from tinyschool.executors import make_executor
from tinyschool.stages.annotate import run_annotate
from filters.text import Doc
from filters.trim import trim_to_sentence

VOCAB = REPO / "prompts" / "vocab" / "default.tsv"
STORIES = [json.loads(line) for line in (REPO / "tests" / "data" / "child_stories.jsonl").read_text().splitlines()]
GOOD = STORIES[0]["text"]


def record(i, text, prompt="Write a short story.", slots=None, finish="stop", index=None):
    return {"id": f"d{i:04d}", "text": text, "prompt": prompt, "template": "tinystories", "slots": slots or {},
            "backend": "test", "model": "none", "finish_reason": finish, "sample_index": i if index is None else index,
            "recipe": "t"}


def corpus_of(root: Path, recs: list[dict], shard_size: int = 64) -> Corpus:
    c = Corpus(root).init("t")
    for k in range(0, len(recs), shard_size):
        c.write_shard("raw", f"part-{k // shard_size:05d}", raw_table(recs[k:k + shard_size]))
    c.mark_complete("raw")
    return c


def annotated(c: Corpus) -> list[dict]:
    return query_arrow(c, "SELECT * FROM annotated ORDER BY id").to_pylist()


def test_human_childrens_stories_are_kept(tmp_path):
    """>= 95% of the 50+ human-written stories pass the default cleaning (every annotator, dedup)."""
    assert len(STORIES) >= 50
    c = corpus_of(tmp_path / "c", [record(i, s["text"]) for i, s in enumerate(STORIES)])
    stats = run_annotate(c, FilterConfig(), VOCAB, executor=make_executor(workers=1))
    rows = annotated(c)
    dropped = [(r["id"], r["drop_reason"]) for r in rows if not r["keep"]]
    assert stats.kept / stats.docs >= 0.95, dropped
    assert max(r["flesch_kincaid_grade"] for r in rows) < 6


JUNK = {
    "garbled": ("Once upon a time ooohhehHahAhWelooooLELEY HEMMZZELL wuuuubbbb zzzkkrrppt flarrbbbbb "
                "glimmmorrrpp xxtthhhhh snorrrkkk blaaarrghh quuuuiiieepp mmmrrrfff tthhhppptt. " * 3, "dictionary:non_words"),
    "emoji": (GOOD + " 😀🐶", "junk:emoji"),
    "url": (GOOD + " Read more at www.storytime.com/lily for the next part.", "junk:url"),
    "hashtag": (GOOD + " #bedtime #kids", "junk:hashtag"),
    "date": ("On March 3, 2021 " + GOOD, "junk:date"),
    "odd_case": (GOOD + " She walked sloWLY into the tIssues of the lAdiES.", "junk:odd_case"),  # broken subword pieces
    "echo": (GOOD + " End your story here, wrap up everything nicely.", "instruction_echo"),
    "write_a_story": ("Write a story about a dog. " + GOOD, "instruction_echo"),
    "bullets": ("\n".join(f"- The dog ran to the park and played with the ball number {i}." for i in range(12)), None),
    "symbols": ("### " * 20 + GOOD, "gopher_quality:symbol_word_ratio"),
    "no_stop_words": (" ".join(["Dog run. Cat jump. Sun shine. Bird sing. Fish swim."] * 12), "gopher_quality:stop_words"),
}


def test_junk_is_caught_with_its_reason():
    cfg = FilterConfig.model_validate({"length": {"min_words": 20}})
    anns = build_annotators(cfg, Resources(VOCAB))
    for name, (text, expected) in JUNK.items():
        d = Doc(name, text, "Write a short story.", {}, "stop", None, False)
        reasons = []
        for a in anns:
            values, r = a.annotate(d)
            if r:
                reasons.append(r)
        if expected is None:
            continue
        assert expected in reasons, (name, reasons)
    # dialogue that gives an order is a story, not an instruction echo
    ok = Doc("ok", '"Remember to brush your teeth," said Mom. ' + GOOD, "", {}, "stop", None, False)
    echo = [a for a in anns if a.name == "instruction_echo"][0]
    assert echo.annotate(ok) == ({"instruction_echo": False, "instruction_echo_phrase": None}, None)


def test_gopher_bullet_and_ellipsis_lines():
    from filters.gopher_quality import gopher_metrics

    m = gopher_metrics("- one\n- two\n- three\nfour...\nfive…\nsix")
    assert m["bullet_lines_frac"] == 0.5 and m["ellipsis_lines_frac"] == pytest.approx(2 / 6)
    assert m["symbol_word_ratio"] == pytest.approx(2 / 9)
    assert gopher_metrics("a 12 34 ok")["alpha_words_frac"] == 0.5


def test_select_best_unit():
    cols = {"unfinished": [True, False, False, False], "required_words_present": [True, False, True, True],
            "oov_rate": [0.0, 0.0, 0.1, 0.05]}
    reasons, picked = select_best(SelectConfig(mode="best", group_size=2), ["a", "b", "c", "d"], ["p", "p", "q", "q"],
                                  cols, ["degenerate:unfinished", None, None, None])
    assert picked["selected"] == [False, True, False, True]
    assert reasons == ["degenerate:unfinished", None, "select:not_selected", None]
    same, none = select_best(SelectConfig(), ["a"], ["p"], cols, [None])
    assert same == [None] and none == {}


def test_best_of_k_and_trim_in_the_stage(tmp_path):
    prompt_a, prompt_b = "Write a story about a puppy.", "Write a story about a cake."
    slots = {"verb": "play", "noun": "ball", "adjective": "red"}
    s2 = STORIES[1]["text"]
    cut = s2 + " Then Tom and his mom walked to the big"  # cut by max_tokens mid-sentence
    recs = [record(0, GOOD.replace("red ball", "ball"), prompt_a, slots, index=0),  # misses the required "red"
            record(1, GOOD, prompt_a, slots, index=1),                              # has every required word
            record(2, cut, prompt_b, slots, finish="length", index=2),               # trimmed, then selected
            record(3, "Once upon a time there was a", prompt_b, slots, finish="length", index=3),
            record(4, STORIES[2]["text"] + "\nChoose Your Story:", "Write a story about a frog.", slots, finish="stop", index=0)]
    c = corpus_of(tmp_path / "c", recs)
    cfg = FilterConfig.model_validate({"select": {"mode": "best", "group_size": 2}, "degenerate": {"trim_unfinished": True}})
    run_annotate(c, cfg, VOCAB, executor=make_executor(workers=1))
    rows = {r["id"]: r for r in annotated(c)}
    assert rows["d0001"]["selected"] and rows["d0001"]["keep"]
    assert not rows["d0000"]["selected"] and rows["d0000"]["drop_reason"] == "select:not_selected"
    assert rows["d0002"]["selected"] and rows["d0002"]["keep"] and rows["d0002"]["text"] == s2
    assert rows["d0002"]["trimmed_chars"] == len(cut) - len(s2)
    assert rows["d0003"]["trimmed_chars"] == 0 and not rows["d0003"]["keep"]
    assert rows["d0001"]["trimmed_chars"] == 0
    assert rows["d0004"]["keep"] and rows["d0004"]["text"] == STORIES[2]["text"]  # stopped mid-line: trimmed too
    # raw keeps the model's text; clean has the trimmed one; not-selected rows are queryable
    raw = {r["id"]: r["text"] for r in query_arrow(c, "SELECT id, text FROM raw").to_pylist()}
    assert raw["d0002"] == cut
    clean = {r["id"]: r["text"] for r in query_arrow(c, "SELECT id, text FROM clean").to_pylist()}
    assert clean == {"d0001": GOOD, "d0002": s2, "d0004": STORIES[2]["text"]}
    n = query_arrow(c, "SELECT count(*) AS n FROM annotated WHERE NOT selected").to_pylist()[0]["n"]
    assert n == 2


def test_trim_to_sentence():
    assert trim_to_sentence('She smiled. "Thank you!" he said. Then the') == 'She smiled. "Thank you!" he said.'
    assert trim_to_sentence("no end here") is None


def test_junk_ascii_fast_path_counts_like_the_character_loop():
    """ASCII text takes a regex path; it must give the per-character definition's numbers."""
    import random

    from filters.junk import is_emoji, is_symbol, junk_metrics
    rng = random.Random(0)
    alphabet = "".join(chr(i) for i in range(32, 127)) + "\n\t"
    for _ in range(500):
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        chars = [c for c in t if not c.isspace()]
        m = junk_metrics(t)
        assert m["emoji_count"] == sum(map(is_emoji, chars)) == 0
        assert m["symbol_frac"] == (sum(map(is_symbol, chars)) / len(chars) if chars else 0.0)
    assert junk_metrics("A cat \U0001F600 and a #tag!")["emoji_count"] == 1  # the general path


def test_gopher_alpha_words_ascii_path_counts_like_the_word_loop():
    import random

    from filters.gopher_quality import gopher_metrics
    rng = random.Random(1)
    alphabet = "ab 1.,!#\n\t-'\"()xyz9 \x1c"
    for _ in range(1000):
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        words = t.split()
        want = sum(any(c.isalpha() for c in w) for w in words) / len(words) if words else 0.0
        assert gopher_metrics(t)["alpha_words_frac"] == pytest.approx(want, abs=1e-12)


def test_gated_instruction_echo_and_junk_find_what_the_plain_regexes_find():
    """The cheap gates (a pattern is tried only when one of its words is there) change no result."""
    import re

    from filters.base import Resources
    from filters.instruction_echo import DEFAULT_PATTERNS, InstructionEchoAnnotator, InstructionEchoConfig
    from filters.junk import DATE_RE, HASHTAG_RE, ODD_CASE_RE, URL_RE, junk_metrics
    one = re.compile("|".join(f"(?:{p})" for p in DEFAULT_PATTERNS), re.IGNORECASE | re.MULTILINE)
    echo = InstructionEchoAnnotator(InstructionEchoConfig(), Resources())
    texts = [s["text"] for s in STORIES] + [
        "Once upon a time. End your story here, wrap up everything nicely.", "Here is a short story: a cat.",
        "Title: The Cat\nThe story should use the verb \"run\".", "I hope you enjoy it! Visit www.Example.COM on 12/5/2023.",
        "A #Tag and @handle and sloWLY, born March 3, 2021 in 1999. See http://x.io/a and FOO.Html", "plain text",
        "THE FOLLOWING FEATURES: Foreshadowing, a Plot Twist. Word count: 120. Only uses very simple words."]
    for t in texts:
        want = one.search(t)
        got = echo.first_match(t)
        assert (want and want.group(0), want and want.start()) == (got and got.group(0), got and got.start()), t
        m = junk_metrics(t)
        assert (m["url_count"], m["hashtag_count"], m["date_count"], m["odd_case_count"]) == \
            (len(URL_RE.findall(t)), len(HASHTAG_RE.findall(t)), len(DATE_RE.findall(t)), len(ODD_CASE_RE.findall(t))), t
