"""Issue 2.3: the shipped vocabulary is exactly the output of `tinyschool vocab build --size 1500`."""
import pytest

from conftest import REPO, run_cli
from corpora.vocab import read_vocab

pytestmark = pytest.mark.slow


def test_rebuild_matches_shipped(tmp_path):
    out = tmp_path / "v.tsv"
    r = run_cli("vocab", "build", "--size", "1500", "--out", out)
    assert r.returncode == 0, r.stderr
    shipped = REPO / "prompts" / "vocab" / "default.tsv"
    assert out.read_text() == shipped.read_text()


def test_shipped_vocabulary_content():
    v = read_vocab(REPO / "prompts" / "vocab" / "default.tsv")
    assert len(v) == 1500
    assert {p for _, p, _ in v.entries} == {"NOUN", "VERB", "ADJ"}
    words = v.lemmas()
    for w in ["dog", "play", "happy", "ball", "run", "big"]:
        assert w in words
    for w in ["the", "and", "of", "shit", "fuck"]:  # function words, profanity
        assert w not in words
    assert all(w.islower() for w in words)  # no proper nouns
    freqs = [f for _, _, f in v.entries]
    assert freqs == sorted(freqs, reverse=True)
