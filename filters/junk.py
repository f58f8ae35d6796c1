"""Web and chat junk in a story: emoji, URLs (and URL fragments), hashtags, @handles, dates and
stray symbols.

Columns: `emoji_count`, `url_count`, `hashtag_count` (hashtags and @handles), `date_count`, and
`symbol_frac`: the share of non-space characters that are neither letters, digits nor ordinary
prose punctuation, and `odd_case_count`: words with a capital after a small letter ("sloWLY",
"tIssues": a small model's broken subword pieces). Defaults drop a story with any emoji, URL, hashtag or date (a children's story
has none) or with more than 2% symbols.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
from pydantic import Field

from corpora.chars import is_emoji, is_symbol
from filters.base import Annotator, AnnotatorConfig

URL_RE = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|org|net|io|co|edu|gov|ly|me|html?|php)\b", re.IGNORECASE)
HASHTAG_RE = re.compile(r"(?<![\w&])[#@][A-Za-z_]\w*")
MONTHS = "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|september|october|november|december"
DATE_RE = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    rf"|\b(?:{MONTHS})\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b|\b\d{{1,2}}(?:st|nd|rd|th)? (?:{MONTHS}),? \d{{4}}\b"
    r"|\b(?:19|20)\d{2}\b",
    re.IGNORECASE)
ODD_CASE_RE = re.compile(r"\b[A-Za-z]*[a-z][A-Z][A-Za-z]*\b")

# ASCII text (most of an English corpus) in C: no ASCII character is an emoji, and its symbols are
# what is neither a letter, a digit, whitespace nor prose punctuation
_ASCII_SYMBOL = re.compile(r"[^A-Za-z0-9\s.,!?;:'\"()\-]")
_SPACE = re.compile(r"\s")
# the same two counts with bytes.translate: the ASCII bytes that are not symbols, and the whitespace
_ASCII_NOT_SYMBOL = bytes(i for i in range(128) if not _ASCII_SYMBOL.match(chr(i)))
_ASCII_SPACE = bytes(i for i in range(128) if _SPACE.match(chr(i)))


_TLDS = tuple("." + t for t in "com org net io co edu gov ly me htm php".split())
_LOWER_UPPER = re.compile(r"[a-z][A-Z]")
_DIGIT = re.compile(r"\d")
_DOT_LETTER = re.compile(r"\.[a-z]")
# the same gates on ASCII bytes: the digits, and each letter as b"a" (small) or b"A" (capital), the rest b" "
_ASCII_DIGITS = bytes(i for i in range(128) if _DIGIT.match(chr(i)))
_ASCII_CASE = bytes(ord("a") if "a" <= chr(i) <= "z" else ord("A") if "A" <= chr(i) <= "Z" else ord(" ") for i in range(256))


def _count(rx: re.Pattern, text: str, possible: bool) -> int:
    """Matches of `rx`, when a cheap necessary condition says there can be any."""
    return len(rx.findall(text)) if possible else 0


def junk_metrics(text: str, low: str | None = None) -> dict[str, Any]:
    """`low`: `text.lower()` when the caller has it."""
    if text.isascii():
        raw = text.encode("ascii")
        n_chars = len(raw.translate(None, _ASCII_SPACE))  # len(text) - len(_SPACE.findall(text))
        symbols, emoji = len(raw.translate(None, _ASCII_NOT_SYMBOL)), 0  # len(_ASCII_SYMBOL.findall(text))
        has_digit = len(raw.translate(None, _ASCII_DIGITS)) < len(raw)  # _DIGIT.search(text)
        lower_upper = b"aA" in raw.translate(_ASCII_CASE)  # _LOWER_UPPER.search(text)
    else:
        chars = [c for c in text if not c.isspace()]
        n_chars = len(chars)
        symbols = sum(1 for c in chars if is_symbol(c))
        emoji = sum(1 for c in chars if is_emoji(c))
        has_digit, lower_upper = _DIGIT.search(text) is not None, _LOWER_UPPER.search(text) is not None
    low = text.lower() if low is None else low
    # a top-level domain needs a dot before a letter: one scan first, the eleven substring tests only then
    tld = _DOT_LETTER.search(low) is not None and any(map(low.__contains__, _TLDS))
    return {
        "emoji_count": emoji,
        "url_count": _count(URL_RE, text, "http" in low or "www." in low or tld),
        "hashtag_count": _count(HASHTAG_RE, text, "#" in text or "@" in text),
        "date_count": _count(DATE_RE, text, has_digit),  # every date form has a digit
        "symbol_frac": symbols / n_chars if n_chars else 0.0,
        "odd_case_count": _count(ODD_CASE_RE, text, lower_upper),
    }


class JunkConfig(AnnotatorConfig):
    max_emoji: int | None = Field(0, ge=0, description="drop above this many emoji (None: annotate only)")
    max_urls: int | None = Field(0, ge=0)
    max_hashtags: int | None = Field(0, ge=0, description="hashtags and @handles")
    max_dates: int | None = Field(0, ge=0, description="calendar dates and years (1900-2099)")
    max_symbol_frac: float | None = Field(0.02, ge=0, le=1, description="share of non-space characters that are symbols")
    max_odd_case: int | None = Field(1, ge=0, description="words with a capital after a small letter (one is allowed: McQueen)")


class JunkAnnotator(Annotator):
    name = "junk"
    Config = JunkConfig
    columns = {"emoji_count": pa.int64(), "url_count": pa.int64(), "hashtag_count": pa.int64(),
               "date_count": pa.int64(), "symbol_frac": pa.float64(), "odd_case_count": pa.int64()}

    def annotate(self, doc) -> tuple[dict[str, Any], str | None]:
        v = junk_metrics(doc.text, doc.lower)
        c = self.cfg
        for col, limit, reason in (("emoji_count", c.max_emoji, "emoji"), ("url_count", c.max_urls, "url"),
                                   ("hashtag_count", c.max_hashtags, "hashtag"), ("date_count", c.max_dates, "date"),
                                   ("symbol_frac", c.max_symbol_frac, "symbols"), ("odd_case_count", c.max_odd_case, "odd_case")):
            if limit is not None and v[col] > limit:
                return v, f"junk:{reason}"
        return v, None
