"""Sentence character spans and token spans (METRICS.md §2).

Pure Python, no torch. Two steps:

1. `char_spans(text, sentences)` locates each sentence in `text`, searching from where the
   previous *found* sentence ended (a missing sentence leaves the cursor where it was, so one
   bad sentence does not swallow the rest of the trace).
2. `token_spans(tokenizer, text, spans)` turns character spans into token spans with the
   prefix-count definition: `start_k = len(encode(text[:cs]))` (0 when `cs == 0`) and
   `end_k = len(encode(text[:ce]))`. A missing sentence gets the empty span `(0, 0)`, which
   METRICS.md §3 turns into a zero row and a zero column of `A`.

Two ways to compute the prefix counts, with identical results (tests/test_spans.py proves it on
every shared rollout):

- literal: encode every prefix `text[:c]` (the definition; `O(N x T)`, the reference);
- windowed, only for tokenizers `windowed_support` recognises (Qwen2/Qwen3 byte-level BPE):
  `len(encode(text[:c])) == len(encode(text[:a])) + len(encode(text[a:c]))` at every *hard
  boundary* `a <= c` (`text[a-1]` is `\r` or `\n` and `text[a]` is not whitespace: no
  normalizer step, added token or pre-tokenizer piece can straddle `a`, see
  `windowed_support`). Prefix counts at the boundaries are sums of the encodings of the
  pieces between consecutive boundaries; each cut then encodes only `text[a:c]`, about one
  sentence or paragraph. Linear in `T` up to the longest newline-free stretch.
"""

from __future__ import annotations

import bisect
import json
import re
import warnings
import weakref
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

TokenSpanMethod = Literal["auto", "literal", "windowed"]

# The Split regex of the Qwen2 / Qwen2.5 / Qwen3 tokenizers (tokenizer.json), the only one
# whose pieces have been checked to never straddle a hard boundary (see `windowed_support`).
QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# A hard boundary is the end of a match: a CR or LF followed by a non-whitespace character.
# Python's `\s`/`\S` on str follow `str.isspace()`, a superset of Unicode White_Space (it adds
# U+001C-U+001F), so this finds a subset of the positions the proof allows: conservative.
_HARD_BOUNDARY = re.compile(r"[\r\n](?=\S)")

# Tokenizer objects whose windowed result once disagreed with the definition at run time (never
# seen so far) -> the message. Weak keys: an entry dies with its tokenizer. The support check
# itself is not cached (0.2 ms): a tokenizer changed after first use is judged afresh.
_MISMATCHED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _state(component) -> object:
    """The JSON state of a `tokenizers` component (normalizer, pre-tokenizer, ...), or None."""
    if component is None:
        return None
    return json.loads(component.__getstate__())


def _check_windowed_support(tokenizer) -> str | None:
    if not getattr(tokenizer, "is_fast", False):
        return "not a fast (Rust) tokenizer"
    bt = getattr(tokenizer, "backend_tokenizer", None)
    if bt is None:
        return "no backend_tokenizer"
    try:
        normalizer = _state(bt.normalizer)
        pre = _state(bt.pre_tokenizer)
        post = _state(bt.post_processor)
    except Exception as e:  # noqa: BLE001 - an unknown component is simply not supported
        return f"cannot read the tokenizer pipeline ({type(e).__name__}: {e})"
    if normalizer not in (None, {"type": "NFC"}):
        return f"normalizer {normalizer!r} is not NFC or none"
    steps = pre.get("pretokenizers") if isinstance(pre, dict) and pre.get("type") == "Sequence" else None
    if not (isinstance(steps, list) and len(steps) == 2):
        return f"pre-tokenizer {pre!r} is not Sequence[Split, ByteLevel]"
    split, byte_level = steps
    if split != {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT_REGEX}, "behavior": "Isolated",
                 "invert": False}:
        return f"Split pre-tokenizer {split!r} is not the Qwen2 regex, Isolated"
    if not (byte_level.get("type") == "ByteLevel" and byte_level.get("add_prefix_space") is False
            and byte_level.get("use_regex") is False):
        return f"second pre-tokenizer {byte_level!r} is not ByteLevel without prefix space/regex"
    if post is not None and post.get("type") != "ByteLevel":
        return f"post-processor {post.get('type')!r} may add tokens"
    model = bt.model
    if type(model).__name__ != "BPE" or getattr(model, "dropout", None) not in (None, 0.0):
        return "model is not BPE without dropout"
    if bt.truncation is not None or bt.padding is not None:
        return "truncation or padding is enabled"
    for tok in bt.get_added_tokens_decoder().values():
        if "\r" in tok.content or "\n" in tok.content or tok.lstrip or tok.rstrip or tok.single_word:
            return f"added token {tok.content!r} contains CR/LF or strips/single_word"
    if len(tokenizer.encode("")) != 0:
        return "encode('') adds special tokens"
    return None


def windowed_support(tokenizer) -> str | None:
    """None when the windowed token-span path is exact for `tokenizer`, else why it is not.

    Recognised (all must hold; read from the `tokenizers` pipeline JSON):
    fast tokenizer; normalizer NFC or none; pre-tokenizer exactly
    `Sequence[Split(QWEN2_SPLIT_REGEX, Isolated), ByteLevel(add_prefix_space=False,
    use_regex=False)]`; post-processor none or ByteLevel (adds no tokens); BPE without dropout;
    no truncation/padding; no added token contains CR/LF or has lstrip/rstrip/single_word;
    `encode('')` is empty. The Qwen2, Qwen2.5 and Qwen3 tokenizers qualify.

    Why `encode(text[:c]) == encode(text[:a]) + encode(text[a:c])` at a hard boundary `a`
    (`text[a-1]` in CR/LF, `text[a]` not whitespace), writing P = text[:a], Q = text[a:c]:

    1. Added tokens: a match straddling `a` would contain `text[a-1]`, a CR/LF; none does and
       none strips neighbouring whitespace. The leftmost-longest matches are thus the same in P,
       Q and P+Q, and the segment around `a` is normalized and pre-tokenized as one string.
    2. NFC: CR/LF are starters (ccc 0) with no decomposition that take part in no composition,
       so NFC(P+Q) = NFC(P) + NFC(Q) (no reordering or composition crosses them); NFC(P) still
       ends in CR/LF and NFC(Q) starts with a non-whitespace character (no non-whitespace
       character decomposes to one that starts with whitespace; tested exhaustively).
    3. The regex (leftmost-first, no look-behind, no anchors), at a start i < |P|: the
       alternatives `'s..`, `[^\\r\\n\\p{L}\\p{N}]?\\p{L}+` and `\\p{N}` never contain CR/LF, so they
       end before P's last character; ` ?[^\\s..]+[\\r\\n]*` and `\\s*[\\r\\n]+` can end with CR/LF
       but not continue into Q, whose first character is not whitespace; `\\s+(?!\\S)` is the
       only one that sees past P (the look-ahead), and it is never reached inside P's trailing
       whitespace run because that run contains P's final CR/LF, so `\\s*[\\r\\n]+` (tried
       first) already matches there. So every match starting in P is the same in P and P+Q and
       ends at or before |P|; matches starting at >= |P| see only Q. Pieces never straddle `a`.
    4. ByteLevel maps bytes per piece and BPE merges within a piece, so the tokens are the
       concatenation; the post-processor adds nothing.
    """
    try:
        if tokenizer in _MISMATCHED:
            return _MISMATCHED[tokenizer]
    except TypeError:  # not weak-referenceable / hashable: nothing remembered
        pass
    return _check_windowed_support(tokenizer)


def _encoded_lengths(tokenizer, texts: list[str]) -> list[int]:
    """`[len(encode(t)) for t in texts]`, batched for a fast tokenizer.

    Batches go to the Rust tokenizer, which encodes a batch in parallel. They are bounded in
    characters so a long trace never holds all encodings at once (literal prefix counting of a
    32k-token trace encodes ~150M characters in all).
    """
    if not getattr(tokenizer, "is_fast", False):
        return [len(tokenizer.encode(t)) for t in texts]
    lengths: list[int] = []
    batch: list[str] = []
    size = 0
    for t in texts:
        batch.append(t)
        size += len(t)
        if size >= _BATCH_CHARS:
            lengths += _batch_lengths(tokenizer, batch)
            batch, size = [], 0
    if batch:
        lengths += _batch_lengths(tokenizer, batch)
    return lengths


def _batch_lengths(tokenizer, texts: list[str]) -> list[int]:
    ids = tokenizer(texts, add_special_tokens=True, return_attention_mask=False)["input_ids"]
    return [len(x) for x in ids]


def literal_prefix_lengths(tokenizer, text: str, cuts: Sequence[int]) -> dict[int, int]:
    """`{c: len(encode(text[:c]))}` for every cut `c`: the definition, each prefix encoded once."""
    cuts = sorted(set(cuts))
    return dict(zip(cuts, _encoded_lengths(tokenizer, [text[:c] for c in cuts]), strict=True))


def hard_boundaries(text: str, upto: int | None = None) -> list[int]:
    """0 and every hard boundary `a <= upto`: `text[a-1]` is CR or LF, `text[a]` not whitespace."""
    end = len(text) if upto is None else min(upto + 1, len(text))
    return [0] + [m.end() for m in _HARD_BOUNDARY.finditer(text, 0, end)]


def windowed_prefix_lengths(tokenizer, text: str, cuts: Sequence[int]) -> dict[int, int]:
    """`{c: len(encode(text[:c]))}` by windows from the last hard boundary (no support check).

    Exact only for tokenizers `windowed_support` accepts. With `b_0 = 0 < b_1 < ...` the hard
    boundaries, `len(encode(text[:b_i])) = sum_{j<i} len(encode(text[b_j:b_{j+1}]))`, and a cut
    `c` with last boundary `a = b_i <= c` adds `len(encode(text[a:c]))`.
    """
    cuts = sorted(set(cuts))
    if not cuts:
        return {}
    bounds = hard_boundaries(text, cuts[-1])
    anchors = [bounds[bisect.bisect_right(bounds, c) - 1] for c in cuts]
    n_seg = bounds.index(anchors[-1])  # segments needed: those below the last anchor
    pieces = [text[bounds[j] : bounds[j + 1]] for j in range(n_seg)]
    windows = [(c, a) for c, a in zip(cuts, anchors, strict=True) if c > a]
    lengths = _encoded_lengths(tokenizer, pieces + [text[a:c] for c, a in windows])
    at_bound = {0: 0}
    total = 0
    for j in range(n_seg):
        total += lengths[j]
        at_bound[bounds[j + 1]] = total
    out = {c: at_bound[a] for c, a in zip(cuts, anchors, strict=True)}
    for (c, a), n in zip(windows, lengths[n_seg:], strict=True):
        out[c] = at_bound[a] + n
    return out


def _verify_cuts(cuts: list[int]) -> list[int]:
    """The cuts checked against the definition at run time: the largest and the median."""
    cuts = sorted(set(cuts))
    return sorted({cuts[-1], cuts[len(cuts) // 2]}) if cuts else []


def token_spans(
    tokenizer, text: str, spans: Sequence[CharSpan], *, method: TokenSpanMethod = "auto"
) -> list[tuple[int, int]]:
    """Token span `(start_k, end_k)` of each character span, by the prefix-count definition.

    `start_k = len(encode(text[:cs]))` (0 when `cs == 0`), `end_k = len(encode(text[:ce]))`,
    with `encode` the tokenizer's default encode (special tokens as it adds them by default;
    batched calls with `add_special_tokens=True` give the same ids as `tokenizer.encode`).
    A missing sentence gets `(0, 0)`: an empty span, so a zero row and column of `A`.

    `method`: 'literal' encodes every prefix (the definition). 'windowed' uses
    `windowed_prefix_lengths` (ValueError when `windowed_support` rejects the tokenizer,
    RuntimeError when the run-time check fails). 'auto' (default): windowed when supported,
    else literal. The windowed result is checked against the definition at the largest and
    the median cut (two encodes, `O(T)`); under 'auto' a mismatch warns, falls back to
    literal, and disables the windowed path for that tokenizer object.
    """
    if method not in ("auto", "literal", "windowed"):
        raise ValueError(f"method must be 'auto', 'literal' or 'windowed', not {method!r}")
    cuts = [s.start for s in spans if s.found and s.start > 0]
    cuts += [s.end for s in spans if s.found]
    lengths: dict[int, int] | None = None
    if method != "literal":
        reason = windowed_support(tokenizer)
        if reason is not None and method == "windowed":
            raise ValueError(f"windowed token spans are not exact for this tokenizer: {reason}")
        if reason is None:
            lengths = windowed_prefix_lengths(tokenizer, text, cuts)
            check = _verify_cuts(cuts)
            expected = literal_prefix_lengths(tokenizer, text, check)
            bad = [(c, lengths[c], expected[c]) for c in check if lengths[c] != expected[c]]
            if bad:
                msg = (f"windowed token spans disagree with prefix counting at (cut, windowed, "
                       f"literal) {bad}")
                if method == "windowed":
                    raise RuntimeError(msg)
                warnings.warn(msg + "; using prefix counting for this tokenizer from now on",
                              RuntimeWarning, stacklevel=2)
                try:
                    _MISMATCHED[tokenizer] = "run-time mismatch: " + msg
                except TypeError:
                    pass
                lengths = None
    if lengths is None:
        lengths = literal_prefix_lengths(tokenizer, text, cuts)
    out: list[tuple[int, int]] = []
    for s in spans:
        if not s.found:
            out.append(MISSING_TOKEN_SPAN)
            continue
        start = lengths[s.start] if s.start > 0 else 0
        out.append((start, lengths[s.end]))
    return out
