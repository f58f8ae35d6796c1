"""Issue 18.2: other languages. Word tokens of non-Latin scripts keep their vowel signs and viramas
(Unicode marks), so length, repetition, n-gram and MinHash shingles see real words; readability is
null where no formula exists; `vocab build --lang`; and a small Hindi corpus written for this test goes
through import -> annotate -> train, and the trained model's validation loss falls.
"""
import json
import random

import duckdb
import numpy as np
import pytest

from conftest import run_cli
from filters.base import Resources
from filters.length import count_sentences
from filters.minhash import shingle_hashes
from filters.readability import ReadabilityAnnotator, ReadabilityConfig
from filters.text import WORD_RE, Doc, batch_token_hashes, normalized_text, token_hashes
from filters.vocabulary import VocabularyAnnotator, VocabularyConfig


def test_indic_words_keep_their_marks():
    assert WORD_RE.findall("मैं हिंदी बोलता हूँ। आमि বাংলা ভালোবাসি। मी मराठी शिकतो.") == [
        "मैं", "हिंदी", "बोलता", "हूँ", "आमि", "বাংলা", "ভালোবাসি", "मी", "मराठी", "शिकतो"]
    # a naive \w+ would make "हिंदी" and "हिंदू" the same tokens ("ह", "द"); they are different words
    assert Doc("a", "हिंदी").tokens != Doc("b", "हिंदू").tokens
    assert normalized_text(Doc("a", "राम घर गया").tokens) == "राम घर गया"
    # ASCII text: the same tokens as the plain pattern, and the batch hashes equal the per-text ones
    texts = ["Don't stop, Tom's dog!", "मैं हिंदी बोलता हूँ", "café naïve ’quoted’", "x_y 3rd"]
    flat, lens = batch_token_hashes(texts)
    want = [token_hashes(WORD_RE.findall(t.lower())) for t in texts]
    assert list(lens) == [len(w) for w in want] and np.array_equal(flat, np.concatenate(want))
    assert WORD_RE.findall("Don't stop x_y") == ["Don't", "stop", "x", "y"]


def test_shingles_length_and_readability_on_hindi():
    a = "राम के पास एक छोटा कुत्ता था। कुत्ते को गुब्बारा बहुत पसंद था। अंत में सब घर लौट आए।"
    b = a.replace("छोटा", "बड़ा")
    da, db = Doc("a", a), Doc("b", b)
    assert len(da.tokens) == 19 and count_sentences(a) == 3
    sa, sb = set(shingle_hashes(da, 3).tolist()), set(shingle_hashes(db, 3).tolist())
    assert 0.5 < len(sa & sb) / len(sa | sb) < 1  # near, not identical (the marks count)
    en = ReadabilityAnnotator(ReadabilityConfig(), Resources())
    v, _ = en.annotate(da)
    assert all(x is None for x in v.values())  # an English formula on Devanagari: empty, not wrong
    v, _ = en.annotate(Doc("e", "The cat sat on the mat. It was happy."))
    assert v["flesch_kincaid_grade"] is not None
    hi = ReadabilityAnnotator(ReadabilityConfig(language="hi"), Resources())
    v, _ = hi.annotate(Doc("e", "The cat sat on the mat. It was happy."))
    assert all(x is None for x in v.values())


@pytest.mark.slow
def test_vocab_build_lang(tmp_path):
    out = tmp_path / "hi.tsv"
    p = run_cli("vocab", "build", "--lang", "hi", "--size", "200", "--out", out)
    assert p.returncode == 0, p.stderr
    lines = out.read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["lemma", "pos", "frequency"] and len(lines) == 201
    words = [ln.split("\t")[0] for ln in lines[1:]]
    assert "भारत" in words and all(WORD_RE.findall(w) == [w] for w in words)
    assert "है" not in words and "के" not in words  # spaCy's Hindi stop words are left out
    assert {ln.split("\t")[1] for ln in lines[1:]} == {"X"}  # no Hindi spaCy pipeline: the documented fallback
    # the vocabulary annotator in Hindi: word forms against the list, stop words allowed
    ann = VocabularyAnnotator(VocabularyConfig(language="hi", max_oov_rate=None), Resources(out))
    v, _ = ann.annotate(Doc("d", "भारत में आज बात हुई और एक अनोखा चमत्कारी उपन्यास"))
    assert 0 < v["oov_rate"] < 1 and "भारत" not in v["oov_words"] and "में" not in v["oov_words"]
    p = run_cli("vocab", "build", "--lang", "mr", "--size", "10", "--out", tmp_path / "mr.tsv")
    assert p.returncode == 2 and "wordfreq has no word list for language 'mr'" in p.stderr and not (tmp_path / "mr.tsv").exists()


NAMES = ["राम", "मोहन", "अमित", "रवि", "सोनू", "अर्जुन", "करण", "विजय"]
ANIMALS = ["कुत्ता", "तोता", "मेंढक", "खरगोश", "बंदर", "हाथी", "घोड़ा", "मोर"]
THINGS = ["गुब्बारा", "खिलौना", "डिब्बा", "आम", "केला", "पत्थर", "फूल", "झूला"]
PLACES = ["बगीचे", "बाज़ार", "स्कूल", "मैदान", "जंगल", "गाँव"]


def hindi_corpus(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        nm, a, t, pl = rng.choice(NAMES), rng.choice(ANIMALS), rng.choice(THINGS), rng.choice(PLACES)
        s = [f"एक दिन {nm} {pl} में गया।", f"{nm} के पास एक छोटा {a} था।", f"{a} को {t} बहुत पसंद था।"]
        s += rng.sample([f"{nm} ने {t} के साथ खेला।", f"{a} ने एक अनोखा {t} ढूँढा।", f"{nm} बहुत खुश था।",
                         "सूरज चमक रहा था और हवा ठंडी थी।", f"शाम को {nm} की माँ ने खाना बनाया।",
                         f"{a} पेड़ के नीचे सो गया।"], rng.randint(2, 4))
        docs.append({"id": f"hi{i:04d}", "text": " ".join(s + ["अंत में सब घर लौट आए।"])})
    return docs


@pytest.mark.slow
def test_hindi_import_annotate_train(tmp_path):
    docs = hindi_corpus(160)
    docs.append({"id": "hi-copy", "text": docs[0]["text"]})  # an exact duplicate, to be dropped
    src = tmp_path / "hi.jsonl"
    src.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    corpus = tmp_path / "hindi"
    p = run_cli("import", src, "--out", corpus, "--id-field", "id")
    assert p.returncode == 0, p.stderr
    recipe = tmp_path / "hindi.toml"
    recipe.write_text(f"""name = "hindi"
out = "{corpus}"
vocabulary = ""
[filters]
language = "hi"      # every annotator with a language: readability, vocabulary, dictionary, Gopher's stop words
[filters.length]
min_words = 10
[filters.gopher_quality]
min_words = 10       # these test stories are shorter than Gopher's 50-word web pages
""")
    p = run_cli("annotate", recipe, "--workers", "1")
    assert p.returncode == 0, p.stderr + p.stdout
    con = duckdb.connect()
    glob = f"{corpus}/annotated/*.parquet"
    r = con.execute(f"""SELECT count(*), count(*) FILTER (WHERE keep), count(flesch_kincaid_grade), min(word_count)
                        FROM '{glob}'""").fetchone()
    n, kept, graded, min_words = r
    assert n == 161 and graded == 0 and min_words >= 20 and kept >= 20
    # the copy is a duplicate in the cluster of its original (exact, or near when the original is itself
    # a near duplicate of another templated story)
    copy, orig = (con.execute(f"SELECT keep, drop_reason, cluster_id FROM '{glob}' WHERE id = ?", [i]).fetchone()
                  for i in ("hi-copy", "hi0000"))
    assert copy[0] is False and "duplicate:" in copy[1] and copy[2] == orig[2]
    row = con.execute(f"SELECT text, word_count, sentence_count FROM '{glob}' WHERE id = 'hi0000'").fetchone()
    assert row[1] == len(row[0].split()) and row[2] == row[0].count("।")
    exp = tmp_path / "exp.toml"
    exp.write_text(f"""name = "hindi"
corpus = "{corpus}"
out = "{tmp_path / 'runs'}"
seeds = [1]
[tokenizer]
vocab_size = 400
[train]
tokens = 30000
batch_size = 8
context = 64
eval_every = 10
log_every = 5
eval_docs = 16
[samples]
prompts = ["एक दिन"]
max_tokens = 8
[[curricula]]
name = "random"
""")
    p = run_cli("train", exp, "--threads", "1")
    assert p.returncode == 0, p.stderr + p.stdout
    m = con.execute(f"""SELECT step, value FROM '{tmp_path}/runs/**/metrics.parquet' WHERE metric = 'val_loss' ORDER BY step""").fetchall()
    assert len(m) >= 2
    first, last = m[0][1], m[-1][1]
    assert last < 0.7 * first, m  # the probe of loss: a model trained on the Hindi corpus learned it
