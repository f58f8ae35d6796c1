"""Issue 8.2: an imported corpus flows through the rest of the tool like a generated one:
the real cleaning stage (`tinyschool annotate`), query, stats, verify, curricula, and an export
whose card carries the real annotation's counts and readability."""
import json
import random

import pytest

from conftest import REPO, run_cli
from corpora import Corpus
from curricula.documents import load_documents

NAMES = ["Tom", "Lily", "Ben", "Mia", "Sam", "Anna", "Max", "Sue"]
ANIMALS = ["cat", "dog", "bird", "fish", "frog", "duck", "cow", "bear"]
PLACES = ["park", "garden", "forest", "house", "lake", "farm", "school", "beach"]
THINGS = ["ball", "kite", "box", "hat", "cake", "book", "toy", "boat"]
FEELINGS = ["happy", "sad", "scared", "proud", "tired", "surprised"]


def story(rng: random.Random) -> str:
    n, a, p, t, f = rng.choice(NAMES), rng.choice(ANIMALS), rng.choice(PLACES), rng.choice(THINGS), rng.choice(FEELINGS)
    parts = [f"Once upon a time, there was a little {a} named {n}.", f"{n} lived near a big {p}.",
             f"Every day {n} went to the {p} to look for a {t}.", f"One day {n} found a red {t} under a tree.",
             f"{n} felt very {f} and ran home to show mom.", f"Mom smiled and said the {t} was very nice.",
             f"Then {n} and mom played with the {t} until the sun went down.",
             f"At night {n} slept with the {t} and dreamed about the {p}.",
             f"The next day a friend came to play and {n} shared the {t}.", "They laughed and had fun together."]
    rng.shuffle(parts)
    return " ".join(parts[: rng.randint(7, 10)])


@pytest.mark.slow
def test_imported_corpus_through_annotate_query_curricula_and_export(tmp_path):
    rng = random.Random(8)
    docs = [story(rng) for _ in range(30)]
    docs += ["The end.", "A cat sat.", docs[0]]  # too short twice, and an exact duplicate
    src = tmp_path / "stories.txt"
    src.write_text("\n<|endoftext|>\n".join(docs) + "\n<|endoftext|>\n")
    corpus = tmp_path / "corpus"
    r = run_cli("import", src, "--out", corpus, "--split", "sep", "--license", "CC-BY-4.0")
    assert r.returncode == 0, r.stderr

    r = run_cli("annotate", REPO / "prompts" / "recipes" / "demo.toml", "--out", corpus, "--workers", "1", timeout=300)
    assert r.returncode == 0, r.stderr
    c = Corpus(corpus)
    ann = c.read_stage("annotated").to_pylist()
    assert len(ann) == len(docs) and {a["backend"] for a in ann} == {"import"}
    kept = [a for a in ann if a["keep"]]
    assert kept and len(kept) < len(ann) and c.count("clean") == len(kept)
    assert all(a["flesch_kincaid_grade"] is not None for a in ann)

    q = run_cli("query", corpus, "SELECT meta->>'$.source' AS source, count(*) AS n FROM annotated GROUP BY 1", "--format", "json")
    assert q.returncode == 0 and json.loads(q.stdout) == {"source": "stories.txt", "n": len(docs)}
    assert run_cli("stats", corpus).returncode == 0
    assert run_cli("verify", corpus).returncode == 0

    table, stage = load_documents(corpus)  # what curricula and training read
    assert stage == "clean" and sorted(table["text"].to_pylist()) == sorted(a["text"] for a in kept)

    out = tmp_path / "hf"
    r = run_cli("export", corpus, "--format", "hf", "--out", out, "--stage", "annotated")
    assert r.returncode == 0, r.stderr
    card = (out / "README.md").read_text()
    assert f"| annotated rows | {len(ann)} |" in card and f"| kept | {len(kept)} |" in card
    reasons = [a["drop_reason"].split(":")[0] for a in ann if not a["keep"]]  # reason families
    assert "exact_duplicate" in reasons and "length" in reasons
    assert f"| exact_duplicate | {reasons.count('exact_duplicate')} |" in card
    assert f"| length:too_short | {reasons.count('length')} |" in card
    assert "Flesch-Kincaid grade level of the" in card and "license: cc-by-4.0" in card
