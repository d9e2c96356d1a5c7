"""Sentence character spans and token spans (METRICS.md §2).

Pure Python, no torch. Two steps:

1. `char_spans(text, sentences)` locates each sentence in `text`, searching from where the
   previous *found* sentence ended (a missing sentence leaves the cursor where it was, so one
   bad sentence does not swallow the rest of the trace).
2. `token_spans(tokenizer, text, spans)` turns character spans into token spans with the
   prefix-count definition: `start_k = len(encode(text[:cs]))` (0 when `cs == 0`) and
   `end_k = len(encode(text[:ce]))`. A missing sentence gets the empty span `(0, 0)`, which
   METRICS.md §3 turns into a zero row and a zero column of `A`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MatchKind = Literal["exact", "stripped", "whitespace", "missing"]

# METRICS.md §2: these characters are compared as a plain space. Each maps to exactly one
# character, so offsets in the mapped text are offsets in the original text.
_UNICODE_SPACES = (
    "\u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200C)) + "\u202f\u205f\u3000\ufeff"
)
_SPACE_TABLE = str.maketrans({c: " " for c in _UNICODE_SPACES})

MISSING_TOKEN_SPAN: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class CharSpan:
    """Where one sentence lies in the text: `text[start:end]`, and how it was matched."""

    start: int | None
    end: int | None
    match: MatchKind

    @property
    def found(self) -> bool:
        return self.match != "missing"


def normalize_spaces(s: str) -> str:
    """Map the METRICS.md §2 Unicode spaces to ' ' (length-preserving)."""
    return s.translate(_SPACE_TABLE)


def _whitespace_pattern(sentence: str) -> re.Pattern[str] | None:
    """Regex matching `sentence` with every run of whitespace matching any run of whitespace.

    Rules (the "whitespace" match kind):
    - leading and trailing whitespace of the sentence are ignored;
    - a whitespace run inside the sentence matches one or more whitespace characters of the
      text (`\\s+`), so " " in a chunk matches "\\n\\n" in `full_cot`, and vice versa;
    - whitespace is never invented where the sentence has none: "ab" does not match "a b".
    Returns None for a sentence that is empty or only whitespace.
    """
    pieces = sentence.split()
    if not pieces:
        return None
    return re.compile(r"\s+".join(re.escape(p) for p in pieces))


def char_spans(
    text: str, sentences: Sequence[str], *, whitespace_tolerant: bool = False
) -> list[CharSpan]:
    """Locate each sentence in `text`, in order (METRICS.md §2).

    For each sentence, searching from the cursor (the end of the last found sentence, 0 at
    first): the sentence itself ('exact'), else its stripped form ('stripped'), else, only
    when `whitespace_tolerant`, a match where whitespace runs may differ ('whitespace', see
    `_whitespace_pattern`), else 'missing' with start/end None and the cursor unchanged.
    """
    haystack = normalize_spaces(text)
    cursor = 0
    out: list[CharSpan] = []
    for sentence in sentences:
        needle = normalize_spaces(sentence)
        span: CharSpan | None = None
        idx = haystack.find(needle, cursor)
        if idx >= 0:
            span = CharSpan(idx, idx + len(needle), "exact")
        else:
            stripped = needle.strip()
            idx = haystack.find(stripped, cursor)
            if idx >= 0:
                span = CharSpan(idx, idx + len(stripped), "stripped")
            elif whitespace_tolerant:
                pattern = _whitespace_pattern(needle)
                m = pattern.search(haystack, cursor) if pattern is not None else None
                if m is not None:
                    span = CharSpan(m.start(), m.end(), "whitespace")
        if span is None:
            out.append(CharSpan(None, None, "missing"))
        else:
            out.append(span)
            cursor = span.end
    return out


_BATCH_CHARS = 4_000_000


def _batch_lengths(tokenizer, texts: list[str]) -> list[int]:
    ids = tokenizer(texts, add_special_tokens=True, return_attention_mask=False)["input_ids"]
    return [len(x) for x in ids]


def _prefix_lengths(tokenizer, text: str, cuts: list[int]) -> dict[int, int]:
    """`{c: len(encode(text[:c]))}` for every cut `c`, encoded in batches."""
    cuts = sorted(set(cuts))
    if not cuts:
        return {}
    lengths: list[int] = []
    if getattr(tokenizer, "is_fast", False):
        # Batches of prefixes go to the Rust tokenizer, which encodes a batch in parallel.
        # Batches are bounded in characters so a long trace never holds all encodings at once
        # (a 32k-token trace has ~2,600 cuts and ~150M prefix characters in all).
        batch: list[str] = []
        size = 0
        for c in cuts:
            batch.append(text[:c])
            size += c
            if size >= _BATCH_CHARS:
                lengths += _batch_lengths(tokenizer, batch)
                batch, size = [], 0
        if batch:
            lengths += _batch_lengths(tokenizer, batch)
    else:
        lengths = [len(tokenizer.encode(text[:c])) for c in cuts]
    return dict(zip(cuts, lengths, strict=True))


def token_spans(tokenizer, text: str, spans: Sequence[CharSpan]) -> list[tuple[int, int]]:
    """Token span `(start_k, end_k)` of each character span, by the prefix-count definition.

    `start_k = len(encode(text[:cs]))` (0 when `cs == 0`), `end_k = len(encode(text[:ce]))`,
    with `encode` the tokenizer's default encode (special tokens as it adds them by default;
    batched calls with `add_special_tokens=True` give the same ids as `tokenizer.encode`).
    A missing sentence gets `(0, 0)`: an empty span, so a zero row and column of `A`.
    """
    cuts = [s.start for s in spans if s.found and s.start > 0]
    cuts += [s.end for s in spans if s.found]
    lengths = _prefix_lengths(tokenizer, text, cuts)
    out: list[tuple[int, int]] = []
    for s in spans:
        if not s.found:
            out.append(MISSING_TOKEN_SPAN)
            continue
        start = lengths[s.start] if s.start > 0 else 0
        out.append((start, lengths[s.end]))
    return out
