"""Issues 2.3 and 15.1: the shipped vocabularies are exactly what `tinyschool vocab build` makes, the
default (child) level holds a 3-4-year-old's everyday words and none of the adult world's, and a
user's own age-of-acquisition norms can drive the build."""
import pytest

from conftest import REPO, run_cli
from corpora.vocab import read_vocab
from generators.vocab import LEVELS, build_vocab, read_aoa

VOCAB_DIR = REPO / "prompts" / "vocab"
# everyday words of a 3-4-year-old: toys, food, animals, family, colours, feelings, simple actions
CHILD_WORDS = {
    "toys": ["toy", "teddy", "doll", "ball", "kite", "balloon", "block"],
    "food": ["cookie", "cake", "apple", "milk", "bread", "candy", "juice"],
    "animals": ["puppy", "kitten", "dog", "cat", "bird", "duck", "bunny", "frog", "bear"],
    "family": ["mom", "dad", "grandma", "sister", "brother", "baby", "family", "friend"],
    "colours": ["red", "blue", "green", "yellow", "pink", "purple", "brown"],
    "feelings": ["happy", "sad", "angry", "scared", "brave", "proud", "hungry", "sleepy"],
    "qualities": ["bright", "tiny", "tall", "yummy", "big", "little", "soft", "funny"],
    "actions": ["play", "run", "jump", "eat", "sleep", "hug", "share", "laugh", "cry", "sing", "help"],
}
ADULT_WORDS = ["politician", "institution", "website", "finance", "government", "software", "email", "budget",
               "campaign", "anti", "pre", "co", "policy", "election", "tax", "lawyer"]


def test_default_is_a_childs_vocabulary():
    v = read_vocab(VOCAB_DIR / "default.tsv")
    words = v.lemmas()
    missing = {k: [w for w in ws if w not in words] for k, ws in CHILD_WORDS.items()}
    assert not any(missing.values()), missing
    assert [w for w in ADULT_WORDS if w in words] == []
    assert {p for _, p, _ in v.entries} == {"NOUN", "VERB", "ADJ"}
    assert "puppy" in v.words("NOUN") and "jump" in v.words("VERB") and "yummy" in v.words("ADJ")
    for w in ["the", "and", "of", "shit", "fuck", "sex"]:  # function words, profanity
        assert w not in words
    assert all(w.islower() and w.isalpha() for w in words)  # no proper nouns, no symbols
    assert 1200 <= len(v) <= 1600
    # the required verb of a prompt is a child's action: no noun taken for a verb ("to arm", "to pen")
    verbs = set(v.words("VERB"))
    assert verbs.isdisjoint({"arm", "pen", "hat", "house", "boot", "fire", "head", "hand", "kid", "bank", "test"})
    assert {"jump", "hug", "rain", "dress", "swing"} <= verbs


def test_levels_are_shipped_and_differ():
    child = read_vocab(VOCAB_DIR / "default.tsv").lemmas()
    early = read_vocab(VOCAB_DIR / "early_reader.tsv").lemmas()
    gre = read_vocab(VOCAB_DIR / "gre.tsv").lemmas()
    assert len(early) > 2 * len(child) * 0.9 and len(child & early) > 0.6 * len(child)
    assert len(child & gre) < 0.02 * len(child)  # GRE words are rare words
    assert set(LEVELS) == {"child", "early_reader", "gre"}


@pytest.mark.slow
def test_rebuild_matches_shipped(tmp_path):
    out = tmp_path / "v.tsv"
    r = run_cli("vocab", "build", "--out", out, timeout=1800)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == (VOCAB_DIR / "default.tsv").read_text()


def test_user_aoa_norms(tmp_path):
    # a norms file in Kuperman et al.'s layout (Word, OccurTotal, OccurNum, Rating.Mean, ...)
    norms = tmp_path / "AoA.csv"
    rows = [("puppy", 2.9), ("cookie", 3.2), ("ball", 2.5), ("jump", 3.6), ("happy", 3.4), ("politician", 10.2),
            ("finance", 12.5), ("tall", 4.6), ("dog", 2.8), ("budget", 11.0), ("run", 3.5), ("red", 3.0)]
    norms.write_text("Word,OccurTotal,OccurNum,Rating.Mean,Rating.SD,Dunno\n" +
                     "".join(f"{w},20,20,{a},1.5,0\n" for w, a in rows))
    aoa = read_aoa(norms)
    assert aoa["puppy"] == 2.9
    got = build_vocab("child", aoa=aoa, max_age=5)
    words = {w for w, *_ in got}
    assert {"puppy", "cookie", "ball", "dog", "jump", "happy", "tall", "red"} <= words
    assert not words & {"politician", "finance", "budget"}
    # through the command, with one clear line on a bad file
    out = tmp_path / "mine.tsv"
    r = run_cli("vocab", "build", "--aoa", norms, "--max-age", "5", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "puppy" in read_vocab(out).lemmas()
    bad = tmp_path / "bad.csv"
    bad.write_text("lemma,score\nfoo,1\n")
    r = run_cli("vocab", "build", "--aoa", bad, "--max-age", "5", "--out", out)
    assert r.returncode != 0 and "needs a word column" in (r.stderr + r.stdout)
    r = run_cli("vocab", "build", "--max-age", "5", "--out", out)
    assert r.returncode != 0 and "--max-age needs --aoa" in (r.stderr + r.stdout)
