"""Varied texts for checking that a fast path of an annotator gives the plain formulation's values:
edge cases (empty, spaces, punctuation only, numbers, apostrophes, quotes, non-ASCII scripts, emoji,
separators), the human stories of tests/data, and random mutations of them. Plain Python, no
project imports, so that a script can build the same texts against any version of the code."""
from __future__ import annotations

import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

EDGE_CASES = [
    "", " ", "\n", "\n\n\n", "\t \r\n \x0b\x0c", ".", "...", "…", "!?!", "--- *** ###", "'", "''", "'''", "’",
    "a", "A.", "I", "1", "42", "3.14 2,000 1/2 2021-03-04 12/5/2023", "1999 2005 and 2099.",
    "don't won't can't it's I'm we've they'll you're he'd", "'hello' 'world'", "rock'n'roll a''b 'a' ''x'' x'' ''y",
    "Lily’s dog didn’t bark. ‘Hi,’ she said. “Hello!” he said.", "rock’n’roll a’’b ’x’",
    '"Thank you, dog!" Lily said with a big smile. "You\'re welcome," said the dog.',
    "The cat sat. The cat sat. The cat sat. The cat sat.", "The cat sat.\nThe cat sat.\nThe cat sat.\n",
    "Para one is here.\n\nPara one is here.\n\n\nPara two.\n \nPara one is here.",
    "- item one\n- item two\n* item three\n• item four\n— item five\n  – item six", "Wait...\nOh…\nHmm...\nOK.",
    "word " * 300, "the the the the the the the the the the the the", "a b a b a b a b a b a b a b a b",
    "Dog run. Cat jump. Sun shine. Bird sing. Fish swim. " * 12,
    "    leading and trailing spaces    ", "multiple   spaces\t\ttabs\n\n\nnewlines  \r\n crlf",
    "sep\x1cfile\x1dgroup\x1erecord\x1funit sep", "under_score snake_case __dunder__ _x_ a_1",
    "CamelCase sloWLY tIssues McQueen iPhone eBay ABC abc AbC", "hyphen-ated well-known x-ray - -- a-",
    "email me at a.b@example.com or visit www.storytime.com/lily http://x.io/a?b=c #bedtime @handle",
    "On March 3, 2021 and 3rd March 2021 and Jan. 5 2020 and 2021-03-04.",
    "Once upon a time ooohhehHahAhWelooooLELEY HEMMZZELL wuuuubbbb zzzkkrrppt flarrbbbbb.",
    "As an AI language model, I cannot write that. I'm sorry, but here is a story.",
    "Sure! Here is a short story about a dog: The dog ran.", "Title: The Cat\nThe story should use the verb \"run\".",
    "End your story here, wrap up everything nicely.", "<|im_start|>user hi<|im_end|>",
    "Café naïve résumé façade coöperate Ångström Straße ŒUVRE ǅemal", "İstanbul ıi İi ß ẞ ﬁ ﬂ ǰ",
    "Привет, как дела? Это тест. Кошка сидит на ковре.", "Γειά σου κόσμε. Η γάτα κάθεται.",
    "हिंदी में एक छोटी कहानी। बच्चा खेलता है॥ राम ने कहा।", "বাংলা একটি ভাষা। শিশু খেলছে।",
    "这是一个故事。小猫在睡觉！你好吗？", "日本語のテキスト。猫が寝ている。", "한국어 문장입니다. 고양이가 잔다.",
    "مرحبا بالعالم. القطة نائمة.", "שלום עולם. החתול ישן.",
    "The dog 😀 ran 🐶🐶 to the park 🌳. ❤️ 👍🏽 👨‍👩‍👧 ☀ ★ ✓ ©®™ €£¥ §¶ °±×÷",
    "Zero\u200bwidth\u200cjoin\u200dner e\u0301 a\u0308 n\u0303 \ufe0f \U000e0100 combining",
    "Math: x^2 + y^2 = z^2; 3 < 4 > 2 & a | b ~ c ` d \\ e { f } [ g ] ( h )",
    "Numbers 1st 2nd 3rd 4th 10,000 1.5e10 0x1F 007 ½ ² Ⅻ ٣ ३ ๓",
    "UPPER CASE STORY. THE DOG RAN. THE CAT SAT ON THE MAT AND THE SUN WAS HOT.",
    "a" * 500, "ab " * 2000, ("A long story with many words and sentences. " * 400),
    "\ufffd\ufffd broken \ufffd bytes", "tab\tseparated\tvalues\tand\vvertical\ffeed",
    "Ellipsis at end...", "Question at end?", "Quote at end.\"", "Bracket at end.)", "no end here",
    "Wh. Ok. Go now. A b. X y z. Short ones. I. Am. Here. Is it? Yes! No.", "e.g. i.e. Mr. Mrs. Dr. St. U.S.A. a.m.",
    "!!! ??? ... Hi. , , , . . .", " . a . b . c ", "'' \"\" `` ´´", "x" + "y" * 40 + " " + "z" * 41,
]


def _stories() -> list[str]:
    out = []
    for name in ("child_stories.jsonl", "highschool50.jsonl"):
        p = DATA / name
        if p.exists():
            for line in p.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    out.append(str(rec.get("text") or rec.get("story") or ""))
    return [t for t in out if t]


_NOISE = list(" \n\t.,!?;:'\"-’“”…#@/()[]{}0123456789_*&%$") + ["😀", "é", "ß", "हि", "é", "\u200b", "İ", "ﬁ"]


def mutate(text: str, rng: random.Random) -> str:
    """A random edit of a text: characters inserted, words repeated or shuffled, case changed, lines cut."""
    kind = rng.randrange(7)
    words = text.split(" ")
    if kind == 0 and text:
        chars = list(text)
        for _ in range(rng.randint(1, 12)):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(_NOISE))
        return "".join(chars)
    if kind == 1 and len(words) > 4:
        i = rng.randrange(len(words) - 4)
        return " ".join(words[: i + 4] + words[i:i + 4] * rng.randint(1, 6) + words[i + 4:])
    if kind == 2:
        rng.shuffle(words)
        return " ".join(words)
    if kind == 3:
        return "".join(c.upper() if rng.random() < 0.2 else c for c in text)
    if kind == 4:
        return text.replace(". ", ".\n" if rng.random() < 0.5 else ".\n\n")
    if kind == 5:
        return text[: rng.randint(0, len(text))]
    return text.replace("'", "’").replace('"', rng.choice(['"', "“", "”", "'"]))


def varied_texts(k: int = 300, seed: int = 0) -> list[str]:
    """The edge cases, the human stories, and `k` random mutations (one or two edits) of them."""
    rng = random.Random(seed)
    base = EDGE_CASES + _stories()
    out = list(base)
    for _ in range(k):
        t = rng.choice(base)
        for _ in range(rng.randint(1, 2)):
            t = mutate(t, rng)
        out.append(t)
    return out
