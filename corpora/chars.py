"""What kind of character a story's character is: prose punctuation, a symbol, an emoji. Shared by
the junk filter (which counts them) and the constrained decoder (which keeps a model from writing them)."""
from __future__ import annotations

import unicodedata

PROSE = set(".,!?;:'\"()-–—…‘’“”।॥")  # the danda ends a sentence in Devanagari scripts


def is_symbol(ch: str) -> bool:
    """Neither a letter, a combining mark (Indic vowel signs are marks), a digit, nor prose punctuation."""
    return unicodedata.category(ch)[0] not in "LMN" and ch not in PROSE


def is_emoji(ch: str) -> bool:
    o = ord(ch)
    return (0x1F000 <= o <= 0x1FAFF or 0x2600 <= o <= 0x27BF or 0x2B00 <= o <= 0x2BFF or 0xFE0F == o
            or unicodedata.category(ch) == "So")
