"""Constraint-aware decoding: bias a decoder toward a vocabulary and toward the prompt's required words.

Two knobs of the recipe's `[sampling]` table, both off (0) by default, which keeps the sampler exactly
as it was:
 - `vocab_bias`: subtracted from the logit of every token that would start or continue a word outside
   the vocabulary's *closure*: the vocabulary's lemmas and their inflections (regular endings plus
   spaCy's irregular forms: "ran", "mice"), function words (spaCy's stop words), a few interjections
   and narrative adverbs, the words of the prompt lists (names, settings, openings), and every word of
   the prompt's slots. A token that would end a word which is only a prefix of an allowed word ("pupp")
   is penalised the same way. Punctuation, digits and whitespace are never penalised.
 - `required_bias`: added to the logit of the first token of each required word (the `verb`, `noun`
   and `adjective` slots, in any of their forms, with a leading space, lower or capitalised) and then
   to the next token of that word's spelling, until the word has appeared; it grows linearly to twice
   its value as the answer approaches `max_tokens`, so that a required word comes before the end.
 - `sentence_bias`: added to the logit of the tokens that end a sentence (".", "!", "?", '."', ... made
   of punctuation only) once the current sentence has `sentence_words` words, growing linearly to twice
   its value at twice that length: short sentences, the largest term of a readability grade (a 135M
   model otherwise writes run-ons of 40 words without a full stop).
 - `echo_bias`: subtracted from the logit of the token that would write the last word of a phrase
   addressed to the writer ("End the story", "Write your own story", "The story should", "Let me know
   if"): a small model slips from the story back into its prompt, and the instruction_echo filter then
   drops the whole story. Word-level: the phrase's words must follow each other with nothing but
   spaces between (a comma, a full stop or a line break parts them). A sentence or line may not start
   with "End". The state starts from the prefill's words.

With `vocab_bias` on, a vocabulary of ASCII words also penalises (by the same amount) what the junk
filter drops: tokens with a symbol (`# * _ @ ~ | < > [ ] { } = + $ %`, control characters), an emoji
or a piece of one (byte-level fragments), and a capital letter in the middle of a word ("meaL",
"WoW"); a word that starts after a quote or a line break is judged like one after a space.

Word-level tables are built once per (tokenizer, vocabulary) and cached: for every token, whether it
starts a word, continues one, or is neutral, and its letters; the set of all prefixes of allowed words;
a boolean mask over word-start tokens. Continuation masks are computed per partial word and cached
(a children's corpus has few distinct partial words), so a decoding step costs a few tensor ops.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import prompts
from corpora.chars import is_symbol
from corpora.vocab import NARRATIVE_WORDS, read_vocab
from generators.vocab import load_spacy

DEFAULT_REQUIRED_SLOTS = ("verb", "noun", "adjective")
_WORD = re.compile(r"[A-Za-z]+")
_SENT_END = re.compile(r"[.!?]")
# part of a constrained request's cache key: raise it when the processor decodes differently, so a
# changed decoder is never served answers the old one wrote (2: case folded only for ordinary word case;
# 3: symbols, emoji pieces and mid-word capitals penalised, words after a quote or line break judged;
# 4: the state starts from the prefill's words: its sentence, its required words, its echo phrases)
DECODER_VERSION = 4
# phrases addressed to the writer (the instruction_echo filter's, as words): each position lists its
# alternatives ("^": the start of a sentence or line); echo_bias penalises the last word once the others
# are written, in that order. A sentence that starts with "End" is the model telling the writer how to
# end the story ("End the story with...", "End the short story", "End with a...") in a child's story
ECHO_PHRASES: tuple[tuple[tuple[str, ...], ...], ...] = tuple(
    tuple(tuple("" if w == "^" else w for w in pos.split("|")) for pos in phrase.split())
    for phrase in [
        "^ end",
        "end the|your|this story|tale",
        "write|writing|begin|start|finish a|an|the|your|this story|tale",
        "write|writing|begin|start|finish a|an|the|your|this own|next|short|new|little story|tale",
        "the|this|your story should|must|needs|need",
        "here is a|an|the|your|my story|tale|version",
        "use|uses|using simple words",
        "use|uses|using very simple words",
        "i hope you enjoy|like",
        "let me know if",
        "feel free to",
        "as requested",
        "word count|limit",
        "words limit",
        "plot twist",
        "moral value",
        "bad ending",
        "the verb|noun|adjective",
    ])


@dataclass(frozen=True)
class Constraint:
    """What one request asks of the decoder (None on a request: no constraint)."""

    vocab_path: str
    vocab_digest: str
    vocab_bias: float = 0.0
    required_bias: float = 0.0
    required: tuple[str, ...] = ()
    allowed_extra: tuple[str, ...] = ()  # words of the prompt's slots
    sentence_bias: float = 0.0
    sentence_words: int = 10
    echo_bias: float = 0.0

    def as_key(self) -> dict[str, Any]:
        key = {"decoder": DECODER_VERSION, "vocab": self.vocab_digest, "vocab_bias": self.vocab_bias, "required_bias": self.required_bias,
               "required": list(self.required), "allowed_extra": list(self.allowed_extra)}
        if self.sentence_bias:  # (absent when off: the answers cached before the knob existed stay valid)
            key |= {"sentence_bias": self.sentence_bias, "sentence_words": self.sentence_words}
        if self.echo_bias:
            key["echo_bias"] = self.echo_bias
        return key


def slot_words(slots: dict[str, Any]) -> list[str]:
    out: set[str] = set()
    for value in slots.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                out.update(w.lower() for w in _WORD.findall(item))
    return sorted(out)


@lru_cache(maxsize=8)
def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def constraint_for(slots: dict[str, Any], vocab_path: str | Path | None, vocab_bias: float, required_bias: float,
                   required_slots: Sequence[str] = DEFAULT_REQUIRED_SLOTS, sentence_bias: float = 0.0,
                   sentence_words: int = 10, echo_bias: float = 0.0) -> Constraint | None:
    """The constraint of one plan item, or None when every bias is 0 or there is no vocabulary."""
    if (not vocab_bias and not required_bias and not sentence_bias and not echo_bias) or vocab_path is None:
        return None
    required = tuple(str(slots[s]).lower() for s in required_slots if isinstance(slots.get(s), str))
    return Constraint(str(vocab_path), _digest(str(vocab_path)), float(vocab_bias), float(required_bias),
                      required, tuple(slot_words(slots)), float(sentence_bias), int(sentence_words), float(echo_bias))


# ---- the closure of a vocabulary ------------------------------------------------------------------
def _regular_forms(w: str, pos: str) -> set[str]:
    forms = {w}
    cons = len(w) >= 3 and w[-1] not in "aeiouwxy" and w[-2] in "aeiou" and w[-3] not in "aeiou"
    if pos in ("NOUN", "VERB"):
        if w.endswith(("s", "x", "z", "ch", "sh", "o")):
            forms.add(w + "es")
        elif w.endswith("y") and len(w) > 2 and w[-2] not in "aeiou":
            forms.add(w[:-1] + "ies")
        else:
            forms.add(w + "s")
    if pos == "VERB":
        if w.endswith("e"):
            forms |= {w + "d", w[:-1] + "ing"}
        elif w.endswith("y") and len(w) > 2 and w[-2] not in "aeiou":
            forms |= {w[:-1] + "ied", w + "ing"}
        else:
            forms |= {w + "ed", w + "ing"}
            if cons:
                forms |= {w + w[-1] + "ed", w + w[-1] + "ing"}
        forms |= {w + "er", w + "ers"}  # run -> runner is close enough for a child; play -> player
    if pos == "ADJ":
        if w.endswith("e"):
            forms |= {w + "r", w + "st", w[:-1] + "ly", w + "ly"}
        elif w.endswith("y") and len(w) > 2:
            forms |= {w[:-1] + "ier", w[:-1] + "iest", w[:-1] + "ily"}
        else:
            forms |= {w + "er", w + "est", w + "ly"}
            if cons:
                forms |= {w + w[-1] + "er", w + w[-1] + "est"}
    return forms


@lru_cache(maxsize=4)
def closure(vocab_path: str) -> frozenset[str]:
    """Every lower-case word form the constraint allows for this vocabulary (see the module docstring)."""
    from spacy.lang.en.stop_words import STOP_WORDS

    v = read_vocab(vocab_path)
    allowed: set[str] = set()
    lemmas = {}
    for lemma, pos, _ in v.entries:
        allowed |= _regular_forms(lemma, pos)
        lemmas.setdefault(lemma, set()).add(pos)
    exc = load_spacy().get_pipe("lemmatizer").lookups.get_table("lemma_exc")
    for pos in ("noun", "verb", "adj"):
        for form, ls in exc[pos].items():
            if any(lem in lemmas for lem in ls) and form.isalpha():
                allowed.add(form)
    for w in STOP_WORDS:
        allowed |= {w, *(_WORD.findall(w))}
    allowed |= NARRATIVE_WORDS
    for name in ("names", "settings", "openings"):
        path = prompts.ROOT / "lists" / f"{name}.txt"
        if path.exists():
            allowed |= {w.lower() for w in _WORD.findall(path.read_text())}
    return frozenset(w.lower() for w in allowed if w)


def _junk_char(ch: str) -> bool:
    """A character the junk filter counts against a story: a symbol (not a letter, digit, space or
    prose punctuation; control characters too), an emoji, or the replacement character that a byte
    piece of one decodes to."""
    return not ch.isspace() and is_symbol(ch)


def _prefixes(words: Iterable[str]) -> frozenset[str]:
    return frozenset(w[:k] for w in words for k in range(1, len(w) + 1))


# ---- token tables --------------------------------------------------------------------------------
START, CONT, NEUTRAL, APOS, CONT_END = 1, 2, 0, 3, 4


class TokenTables:
    """Per-tokenizer, per-vocabulary tables (build once, reuse for every batch)."""

    def __init__(self, tok, vocab_path: str, size: int):
        import torch

        self.size = size
        self.allowed = closure(vocab_path)
        self.prefixes = _prefixes(self.allowed)
        kinds = [NEUTRAL] * size
        letters = [""] * size
        texts = [tok.decode([i]) for i in range(min(size, len(tok)))]  # every token's text, decoded once
        for i, s in enumerate(texts):
            if not s:
                continue
            # case is folded only where it is a word's ordinary case (lower, or capitalised as "Bella" or a
            # word after a quote): "sloWLY" or " lAd" keep their capitals, match no allowed prefix, and are penalised
            if s[0] == " " and len(s) > 1 and s[1:].isalpha() and s[1:].isascii():
                w = s[1:]
                kinds[i], letters[i] = START, w.lower() if w.islower() or w == w.capitalize() else w
            elif s.isalpha() and s.isascii():
                kinds[i], letters[i] = CONT, s.lower() if s.islower() or s == s.capitalize() else s
            elif s[0] in "'’":
                kinds[i] = APOS
            elif s[0].isalpha() and s.isascii():  # "mom." - letters then punctuation: ends its word, never penalised
                m = _WORD.match(s)
                kinds[i], letters[i] = CONT_END, (m.group(0).lower() if m else "")
        self.kinds = kinds
        self.letters = letters
        # sentence ends: a token with . ! ? (or a paragraph break) closes the sentence; the ones the
        # sentence bias favours are punctuation only (never an ellipsis: Gopher's rules drop those)
        self.ends_sentence = [False] * size
        self.sentence_enders = []
        for i, s in enumerate(texts):
            if _SENT_END.search(s) or "\n" in s:
                self.ends_sentence[i] = True
                if not any(ch.isalnum() for ch in s) and ".." not in s and "\n" not in s and s.strip():
                    self.sentence_enders.append(i)
        # what the junk filter drops, for a vocabulary of ASCII words: symbols, emoji and their byte pieces
        # (never the end-of-text tokens); a capital inside a word; a word after a quote or line break
        # (a continuation token with no word before it) that no allowed word starts with
        special = set(getattr(tok, "all_special_ids", ()) or ())
        ascii_vocab = all(w.isascii() for w in self.allowed if w.isalpha())  # (not "n’t": a stop word of spaCy)
        junk = torch.zeros(size, dtype=torch.bool)
        cont_capital = torch.zeros(size, dtype=torch.bool)
        bad_cont_start = torch.zeros(size, dtype=torch.bool)
        self.breaks = [False] * size  # a token that parts the words of an echo phrase
        for i, s in enumerate(texts):
            if not s:
                continue
            self.breaks[i] = kinds[i] in (NEUTRAL, APOS, CONT_END) and any(not (ch.isalpha() or ch in " \t") for ch in s)
            if ascii_vocab and i not in special and any(_junk_char(ch) for ch in s):
                junk[i] = True
            if kinds[i] in (CONT, CONT_END):
                cont_capital[i] = any(ch.isupper() for ch in s)
                bad_cont_start[i] = letters[i] not in (self.prefixes if kinds[i] == CONT else self.allowed)
        self.junk = junk if ascii_vocab else None
        self.cont_capital = cont_capital
        self.bad_cont_start = bad_cont_start
        self._echo_masks: dict[Any, Any] = {}
        # echo phrases by their next-to-last word: (earlier words, last words)
        self.echo_by_penult: dict[str, list[tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]]] = {}
        for phrase in ECHO_PHRASES:
            if len(phrase) >= 2:
                for w in phrase[-2]:
                    self.echo_by_penult.setdefault(w, []).append((phrase[:-1], phrase[-1]))
        kt = torch.tensor(kinds)
        self.is_cont = kt == CONT
        self.ends_word = ~self.is_cont  # any token but a continuation ends the current word
        bad_start = torch.zeros(size, dtype=torch.bool)
        for i, k in enumerate(kinds):
            if k == START and letters[i] not in self.prefixes:
                bad_start[i] = True
        self.bad_start = bad_start
        self.cont_ids = [i for i, k in enumerate(kinds) if k == CONT and letters[i]]
        self._cont_letters = {}
        for i in self.cont_ids:
            self._cont_letters.setdefault(letters[i], []).append(i)
        self._bad_cont: dict[str, Any] = {}
        self._sorted = sorted(self.allowed)
        self.tok = tok
        self._seqs: dict[str, list[list[int]]] = {}
        self._moved: dict[tuple[int, str], Any] = {}

    def on(self, mask, device):
        """`mask` on `device` (the CPU tables themselves on the CPU; GPU copies are cached by identity)."""
        if device.type == "cpu":
            return mask
        key = (id(mask), str(device))
        got = self._moved.get(key)
        if got is None:
            if len(self._moved) > 4096:
                self._moved.clear()
            got = self._moved[key] = mask.to(device)
        return got

    def bad_continuations(self, partial: str):
        """Bool mask of continuation tokens that would take `partial` outside every allowed word."""
        m = self._bad_cont.get(partial)
        if m is None:
            import bisect


            good: set[int] = set()
            lo = bisect.bisect_left(self._sorted, partial)
            n = len(partial)
            for j in range(lo, len(self._sorted)):
                f = self._sorted[j]
                if not f.startswith(partial):
                    break
                rest = f[n:]
                for k in range(1, len(rest) + 1):
                    ids = self._cont_letters.get(rest[:k])
                    if ids:
                        good.update(ids)
            m = self.is_cont.clone()
            if good:
                m[list(good)] = False
            if len(self._bad_cont) > 50_000:
                self._bad_cont.clear()
            self._bad_cont[partial] = m
        return m

    def _mask(self, key, ids: Callable[[], list[int]]):
        """A bool mask over the tokens, set at `ids()`, cached under `key` (the echo masks)."""
        m = self._echo_masks.get(key)
        if m is None:
            import torch

            if len(self._echo_masks) > 4096:
                self._echo_masks.clear()
            m = self._echo_masks[key] = torch.zeros(self.size, dtype=torch.bool)
            m[ids()] = True
        return m

    def echo_starts(self, finals: tuple[str, ...]):
        """Bool mask of word-start tokens that are one of `finals` (an echo phrase's last word); a token
        that only begins one (" st") is let through, and `echo_continuations` stops the rest ("ory"):
        the same " st" begins "stick", " a" begins "apple"."""
        return self._mask(finals, lambda: [i for i, k in enumerate(self.kinds) if k == START and self.letters[i] in finals])

    def echo_word_starts(self, finals: tuple[str, ...]):
        """Bool mask of continuation tokens that are one of `finals`: a word without a space before it,
        at the start of a line or after a quote ("End")."""
        return self._mask(("^", finals), lambda: [i for i in self.cont_ids if self.letters[i] in finals])

    def echo_continuations(self, partial: str, finals: tuple[str, ...]):
        """Bool mask of continuation tokens that carry `partial` on toward one of `finals`."""
        return self._mask((partial, finals), lambda: [i for i, k in enumerate(self.kinds) if k in (CONT, CONT_END)
                                                      and self.letters[i]
                                                      and any(f.startswith(partial + self.letters[i]) for f in finals)])

    def sequences(self, word: str) -> list[list[int]]:
        """Token sequences that spell a required word's forms after a space (lower and capitalised)."""
        s = self._seqs.get(word)
        if s is None:
            forms = {f for f in self.allowed if f == word or f in _regular_forms(word, "VERB") | _regular_forms(word, "NOUN") | _regular_forms(word, "ADJ")}
            forms.add(word)
            s = []
            for f in sorted(forms):
                for v in (f, f.capitalize()):
                    ids = self.tok(" " + v, add_special_tokens=False)["input_ids"]
                    if ids:
                        s.append(ids)
            self._seqs[word] = s
        return s


_TABLES: dict[tuple[int, str], TokenTables] = {}


def tables_for(tok, vocab_path: str, size: int) -> TokenTables:
    key = (id(tok), vocab_path)
    t = _TABLES.get(key)
    if t is None:
        t = _TABLES[key] = TokenTables(tok, vocab_path, size)
    return t


class RowState:
    """One batch row's decoding state: the partial word and the required words not yet seen."""

    def __init__(self, c: Constraint, tables: TokenTables, max_tokens: int, prefill_ids: Sequence[int] = ()):
        self.c = c
        self.t = tables
        self.partial = ""  # letters of the word being written; None: not judged (after an apostrophe)
        self.skip = False
        self.pending = {w: tables.sequences(w) for w in c.required}
        # slot words the closure lacks (a name from the user's own list) may be started too
        self.extra_starts = sorted({ids[0] for w in c.allowed_extra if w not in tables.allowed
                                    for v in (w, w.capitalize()) for ids in [tables.tok(" " + v, add_special_tokens=False)["input_ids"]] if ids})
        forms = {}
        for w in c.required:
            forms[w] = {w} | {f for f in _regular_forms(w, "VERB") | _regular_forms(w, "NOUN") | _regular_forms(w, "ADJ")}
        self.forms = forms
        self.max_tokens = max(1, max_tokens)
        self.tokens: list[int] = []
        self.sentence_len = 0  # words in the sentence being written
        self.history: list[str] = [""]  # the last words written ("": a break between words), for echo_bias
        # the answer's prefill ("Once upon a time,") is the start of the text: its sentence goes on, its
        # required words are there, an echo phrase may have begun in it; `tokens` counts the answer's own
        for token in prefill_ids:
            self.update(int(token))
        self.tokens = []

    def _word_done(self, word: str) -> None:
        if word:
            for w in [w for w, fs in self.forms.items() if word in fs and w in self.pending]:
                del self.pending[w]
            self._remember(word)

    def _remember(self, word: str) -> None:
        if word or (self.history and self.history[-1]):
            self.history.append(word)
            if len(self.history) > 8:
                del self.history[0]

    def update(self, token: int) -> None:
        t = self.t
        kind = t.kinds[token] if token < len(t.kinds) else NEUTRAL
        self.tokens.append(token)
        if token < len(t.ends_sentence) and t.ends_sentence[token]:
            self.sentence_len = 0
        elif kind == START:
            self.sentence_len += 1
        if kind == CONT:
            if not self.skip:
                self.partial += t.letters[token]
            return
        if kind == CONT_END and not self.skip:
            self.partial += t.letters[token]
        self._word_done(self.partial)
        if token < len(t.breaks) and t.breaks[token]:
            self._remember("")
        if kind == START:
            self.partial, self.skip = t.letters[token], False
        elif kind == APOS:
            self.partial, self.skip = "", True
        else:
            self.partial, self.skip = "", False

    def bias(self, row_logits) -> None:
        """Add this row's biases to its logits (a 1-D tensor, in place; CPU or GPU)."""
        t, c = self.t, self.c
        dev = row_logits.device
        if c.vocab_bias:
            b = c.vocab_bias
            bad_start = t.on(t.bad_start, dev)
            row_logits -= b * bad_start
            if self.extra_starts:
                row_logits[self.extra_starts] += b * bad_start[self.extra_starts]
            p = self.partial
            # a word already outside the closure (the model took a penalised token anyway) is let finish
            if p and not self.skip and p in t.prefixes:
                row_logits -= b * t.on(t.bad_continuations(p), dev)
                if p not in t.allowed:
                    row_logits -= b * t.on(t.ends_word, dev)  # stopping here would leave a non-word ("pupp")
            if t.junk is not None:
                row_logits -= b * t.on(t.junk, dev)
            if not self.skip:
                # inside a word: no capital ("meaL"); at a word start with no space (after a quote or a line
                # break): the word must be allowed as after a space
                row_logits -= b * t.on(t.cont_capital if p else t.bad_cont_start, dev)
        if c.required_bias and self.pending:
            boost = c.required_bias * (1.0 + min(1.0, len(self.tokens) / self.max_tokens))
            ids: set[int] = set()
            toks = self.tokens
            for seqs in self.pending.values():
                for s in seqs:
                    ids.add(s[0])
                    for k in range(1, len(s)):
                        if toks[-k:] == s[:k]:
                            ids.add(s[k])
            if ids:
                row_logits[list(ids)] += boost
        if c.echo_bias and self.history:
            self._echo(row_logits, dev)
        if c.sentence_bias and self.sentence_len >= c.sentence_words and t.sentence_enders:
            over = (self.sentence_len - c.sentence_words) / max(1, c.sentence_words)
            row_logits[t.sentence_enders] += c.sentence_bias * (1.0 + min(1.0, over))

    def _echo(self, row_logits, dev) -> None:
        """echo_bias: no next token may write the last word of an echo phrase whose other words are written."""
        t, h, p = self.t, self.history, "" if self.skip else self.partial
        words = h + [p] if p else h
        # the phrase's last word would be the next word: penalise the tokens that write it whole
        for earlier, finals in t.echo_by_penult.get(words[-1], ()):
            if _ends_with(words, earlier):
                row_logits -= self.c.echo_bias * t.on(t.echo_starts(finals), dev)
                if not p and not self.skip:  # at a word start with no space: "End" after a line break
                    row_logits -= self.c.echo_bias * t.on(t.echo_word_starts(finals), dev)
        # the phrase's last word is being written: penalise the tokens that go on toward it
        if p and h:
            for earlier, finals in t.echo_by_penult.get(h[-1], ()):
                if _ends_with(h, earlier) and any(f.startswith(p) and f != p for f in finals):
                    row_logits -= self.c.echo_bias * t.on(t.echo_continuations(p, finals), dev)


def prefill_ids(tok, prefill: str | None) -> list[int]:
    """The prefill's tokens, to start a RowState from (a prefill is tokenised on its own the way it is
    after the chat template's assistant header: from the start of a line)."""
    return tok(prefill, add_special_tokens=False)["input_ids"] if prefill else []


def _ends_with(words: list[str], positions: tuple[tuple[str, ...], ...]) -> bool:
    n = len(positions)
    return len(words) >= n and all(w in alts for w, alts in zip(words[-n:], positions))


class VLLMLogitsProcessor:
    """The same constraint through vLLM's per-request logits-processor hook
    (`SamplingParams(logits_processors=[fn])`, called as fn(output_token_ids, logits) at every step).
    Holds one request's RowState and feeds it the tokens generated since the last call."""

    def __init__(self, constraint: Constraint, tok, max_tokens: int, prefill: str = ""):
        self.constraint, self.tok, self.max_tokens, self.prefill = constraint, tok, max_tokens, prefill
        self.state: RowState | None = None
        self.seen = 0

    def __call__(self, *args):
        token_ids, logits = args[-2], args[-1]  # (output_ids, logits) or (prompt_ids, output_ids, logits)
        if self.state is None:  # the tables are sized to the logits (the model may pad its vocabulary)
            self.state = RowState(self.constraint, tables_for(self.tok, self.constraint.vocab_path, int(logits.shape[-1])),
                                  self.max_tokens, prefill_ids(self.tok, self.prefill))
        for tid in list(token_ids)[self.seen:]:
            self.state.update(int(tid))
        self.seen = len(token_ids)
        self.state.bias(logits)
        return logits
