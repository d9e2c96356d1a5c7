"""Sentence character spans and prefix-count token spans (METRICS.md §2).

The windowed token-span path (ingest/spans.py) must give the same spans as literal prefix
counting: on every shared rollout (both text sources) and on hand-made and random edge cases.
"""

from __future__ import annotations

import copy
import json
import random
import sys
import unicodedata
from pathlib import Path

import pytest

from ingest.spans import (
    CharSpan,
    char_spans,
    hard_boundaries,
    literal_prefix_lengths,
    normalize_spaces,
    token_spans,
    windowed_prefix_lengths,
    windowed_support,
)

ROLLOUTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "rollouts"
needs_data = pytest.mark.skipif(
    not ROLLOUTS.is_dir(), reason=f"shared rollout data not found at {ROLLOUTS}"
)


def math_rollouts() -> list[Path]:
    return sorted(p.parent for p in (ROLLOUTS / "math").rglob("chunks_labeled.json"))


def math_chunks(d: Path) -> list[str]:
    return [c["chunk"] for c in json.loads((d / "chunks_labeled.json").read_text())]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from ingest.tiny_model import qwen3_tokenizer_dir

    return AutoTokenizer.from_pretrained(str(qwen3_tokenizer_dir()))


def test_exact_and_stripped_matches():
    text = "First one.\nSecond one.\nThird."
    spans = char_spans(text, ["First one.", "  Second one. ", "Third."])
    assert spans == [
        CharSpan(0, 10, "exact"),
        CharSpan(11, 22, "stripped"),
        CharSpan(23, 29, "exact"),
    ]
    assert [text[s.start : s.end] for s in spans] == ["First one.", "Second one.", "Third."]


def test_search_starts_where_previous_sentence_ended():
    text = "a b a b"
    assert char_spans(text, ["a", "a", "b"]) == [
        CharSpan(0, 1, "exact"),
        CharSpan(4, 5, "exact"),
        CharSpan(6, 7, "exact"),
    ]


def test_missing_sentence_keeps_the_cursor():
    text = "one two three"
    spans = char_spans(text, ["one", "zzz", "two"])
    assert spans[1] == CharSpan(None, None, "missing") and not spans[1].found
    assert spans[2] == CharSpan(4, 7, "exact")


def test_unicode_spaces_compare_as_plain_space():
    text = "x\u00a0y\u2009z end"
    spans = char_spans(text, ["x y z", "end"])
    assert spans == [CharSpan(0, 5, "exact"), CharSpan(6, 9, "exact")]
    assert len(normalize_spaces(text)) == len(text)
    # and in the sentence too
    assert char_spans("p q", ["p\u3000q"]) == [CharSpan(0, 3, "exact")]


def test_whitespace_tolerant_match():
    text = "Let me think.\n\nSo x = 2.\tDone"
    sentences = ["Let me think. So x = 2.", "Done"]
    plain = char_spans(text, sentences)
    assert plain[0].match == "missing"
    tolerant = char_spans(text, sentences, whitespace_tolerant=True)
    assert tolerant[0] == CharSpan(0, 24, "whitespace")
    assert tolerant[1] == CharSpan(25, 29, "exact")
    # whitespace is never invented where the sentence has none
    assert char_spans("a b", ["ab"], whitespace_tolerant=True)[0].match == "missing"
    # a whitespace-only sentence strips to "": an empty span at the cursor (METRICS.md §2)
    assert char_spans("ab", ["\n"], whitespace_tolerant=True)[0] == CharSpan(0, 0, "stripped")


def test_token_spans_prefix_count_small(tokenizer):
    text = "Hello world.\nThis is a test.\nBye."
    sentences = ["Hello world.", "This is a test.", "missing one", "Bye."]
    spans = char_spans(text, sentences)
    got = token_spans(tokenizer, text, spans)
    enc = tokenizer.encode
    expected = []
    for s in spans:
        if not s.found:
            expected.append((0, 0))
        else:
            expected.append((len(enc(text[: s.start])) if s.start else 0, len(enc(text[: s.end]))))
    assert got == expected
    assert got[2] == (0, 0)
    assert got[0][0] == 0 and got[-1][1] == len(enc(text))


@needs_data
@pytest.mark.parametrize("which", [0, 5, 11])
def test_token_spans_equal_prefix_count_on_real_traces(tokenizer, which):
    d = math_rollouts()[which]
    chunks = math_chunks(d)
    for source in ("chunks", "full_cot"):
        if source == "chunks":
            text = "\n".join(chunks)
        else:
            text = json.loads((d / "base_solution.json").read_text())["full_cot"]
        spans = char_spans(text, chunks, whitespace_tolerant=True)
        got = token_spans(tokenizer, text, spans)
        for s, (t0, t1) in zip(spans, got, strict=True):
            assert s.found
            assert t0 == (len(tokenizer.encode(text[: s.start])) if s.start else 0)
            assert t1 == len(tokenizer.encode(text[: s.end]))


@needs_data
def test_chunks_text_is_found_exactly_and_full_cot_needs_whitespace_tolerance():
    n_whitespace = 0
    for d in math_rollouts():
        chunks = math_chunks(d)
        assert all(s.match == "exact" for s in char_spans("\n".join(chunks), chunks))
        full_cot = json.loads((d / "base_solution.json").read_text())["full_cot"]
        spans = char_spans(full_cot, chunks, whitespace_tolerant=True)
        assert all(s.found for s in spans), d.name
        n_whitespace += sum(s.match == "whitespace" for s in spans)
    assert n_whitespace > 0  # the data README: 11 of 20 traces differ in whitespace


# --- windowed token spans: exactness --------------------------------------------------------


def backend_prefix_lengths(tokenizer, text: str, cuts) -> dict[int, int]:
    """The definition, `len(encode(text[:c]))`, via the Rust tokenizer without Python id lists.

    `tokenizer(...)` calls `backend_tokenizer.encode_batch(texts, add_special_tokens=True)`;
    `encode_batch_fast` is the same pipeline without offsets: ~2x faster, which keeps the
    all-rollouts test short. The test checks it against `tokenizer.encode` on every full text.
    """
    bt = tokenizer.backend_tokenizer
    encode_batch = getattr(bt, "encode_batch_fast", bt.encode_batch)
    cuts = sorted(set(cuts))
    out: dict[int, int] = {}
    i = 0
    while i < len(cuts):  # batches of <= ~2M characters (parallel in Rust, bounded memory)
        j, size = i, 0
        while j < len(cuts) and (j == i or size + cuts[j] <= 2_000_000):
            size += cuts[j]
            j += 1
        encs = encode_batch([text[:c] for c in cuts[i:j]], add_special_tokens=True)
        out.update((c, len(e)) for c, e in zip(cuts[i:j], encs, strict=True))
        i = j
    return out


def all_cuts_agree(tokenizer, text: str) -> None:
    """Windowed == literal at every cut 0..len(text) (the strongest check, for short texts)."""
    cuts = list(range(len(text) + 1))
    assert windowed_prefix_lengths(tokenizer, text, cuts) == literal_prefix_lengths(tokenizer, text, cuts), (
        repr(text)
    )


def test_qwen3_tokenizer_is_recognised(tokenizer):
    assert windowed_support(tokenizer) is None


def test_hard_boundaries():
    text = "a\nb\n c\n\nd\r\ne\n\u00a0f\n\x1cg\n"
    assert hard_boundaries(text) == [0, 2, 8, 11]
    assert hard_boundaries(text, upto=7) == [0, 2]
    assert hard_boundaries(text, upto=8) == [0, 2, 8]
    assert hard_boundaries("") == [0]


EDGE_TEXTS = [
    "",
    "\n",
    "\r",
    "x\n",
    "\n\n\nabc",
    "a\r\nb\r\n\r\nc\rd\r",
    " leading\n trailing \nx  \n  y",
    "\n\n\n\n  \n\tx\ny\n \n\nz",
    "a\n\u00a0b\n\u3000c\n\u2028d\n\x1ce\n\u2000f\n\u0085g",
    "a\n\u0301b\ne\u0301\n\u212b\n\u1100\u1161\n\u1161x",
    "<think>\nx</think>\n<|im_end|>\nq<|endoftext|>\n\n<think>",
    "it's\n's\n'S\n'll do\n'\nd",
    "12\n34\n5.6\n\n7,8",
    "!!\n\n??\n.\n...\n\n- item\n* item\n# h",
    "emoji \U0001f600\n\U0001f600x\n\u4e2d\u6587\n\u4e2d",
    "Let me think.\n\nSo x = 2.\n\n\n   Then y.\n",
]


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_windowed_equals_literal_at_every_cut_edge_cases(tokenizer, text):
    all_cuts_agree(tokenizer, text)


def test_windowed_equals_literal_at_every_cut_random(tokenizer):
    alphabet = [
        "a", "B", "é", "e\u0301", "\u0301", "1", "23", " ", "  ", "\t", "\n", "\n\n", "\r", "\r\n",
        ".", "!", "'", "'s", "'LL", "\u00a0", "\u2009", "\u3000", "\u2028", "\x1c", "\u0085",
        "\u1100", "\u1161", "\u212b", "\U0001f600", "\u4e2d", "<think>", "</think>", "<|im_end|>",
    ]  # fmt: skip
    rng = random.Random(1234)
    for _ in range(150):
        all_cuts_agree(tokenizer, "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 18))))


def test_token_spans_windowed_edge_sentences(tokenizer):
    cases = [
        # (text, sentences): empty, whitespace-only, leading/trailing spaces, CRLF, blank lines,
        # Unicode spaces, a sentence starting with a space or with a newline, a missing one
        ("First.\n\n\nSecond one \n Third\r\nFourth\n\u00a0Fifth\u3000end\n\nLast.",
         ["First.", "", "\n", "Second one ", " Third", "Fourth", "\u00a0Fifth end", "nope",
          "\nLast.", "  "]),
        ("\nstarts with a newline\n  and spaces  \n\n", ["\nstarts", "with a newline", "  and spaces  "]),
        ("x", ["x"]),
        ("", ["", "a"]),
    ]  # fmt: skip
    for text, sentences in cases:
        for tolerant in (False, True):
            spans = char_spans(text, sentences, whitespace_tolerant=tolerant)
            got = token_spans(tokenizer, text, spans, method="windowed")
            assert got == token_spans(tokenizer, text, spans, method="literal")
            enc = tokenizer.encode
            for s, (t0, t1) in zip(spans, got, strict=True):
                if not s.found:
                    assert (t0, t1) == (0, 0)
                    continue
                assert t0 == (len(enc(text[: s.start])) if s.start else 0)
                assert t1 == len(enc(text[: s.end]))
    # cs == 0 gives 0 even when ce == 0
    assert token_spans(tokenizer, "ab", [CharSpan(0, 0, "stripped")], method="windowed") == [(0, 0)]


def test_nfc_and_whitespace_facts_the_proof_uses():
    """The Unicode facts behind `windowed_support`'s proof, checked over every code point."""
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    # no non-whitespace character decomposes to one that starts with whitespace
    assert not [
        c for c in chars
        if unicodedata.decomposition(c) and unicodedata.normalize("NFD", c)[0].isspace() and not c.isspace()
    ]  # fmt: skip
    # CR/LF block NFC: normalizing CR/LF-separated characters is normalizing each one
    for sep in "\n\r":
        joined = sep + sep.join(chars) + sep
        assert unicodedata.normalize("NFC", joined) == sep + sep.join(
            unicodedata.normalize("NFC", c) for c in chars
        ) + sep
    # the tokenizer's regex \s is a subset of Python's str.isspace (it lacks U+001C-U+001F)
    from tokenizers import Regex, pre_tokenizers

    ws = pre_tokenizers.Split(Regex(r"\s"), behavior="removed")
    non_space = "".join(c for c in chars if not c.isspace())
    assert ws.pre_tokenize_str(non_space) == [(non_space, (0, len(non_space)))]


def test_unsupported_tokenizers_fall_back_to_literal(tokenizer):
    from tokenizers import AddedToken, normalizers

    nfkc = copy.deepcopy(tokenizer)
    nfkc.backend_tokenizer.normalizer = normalizers.NFKC()
    stripping = copy.deepcopy(tokenizer)
    assert windowed_support(stripping) is None
    stripping.add_tokens([AddedToken("<mark>", rstrip=True)])  # changed after a first check
    newline_token = copy.deepcopy(tokenizer)
    newline_token.add_tokens([AddedToken("\n<x>")])
    text = "A\u00a0b\n<mark>\n\nc\n\n<x>d\nﬁne"
    spans = char_spans(text, ["A b", "<mark>", "c", "<x>d", "ﬁne"])
    for tok, why in ((nfkc, "normalizer"), (stripping, "added token"), (newline_token, "added token")):
        reason = windowed_support(tok)
        assert reason is not None and why in reason
        with pytest.raises(ValueError, match="not exact"):
            token_spans(tok, text, spans, method="windowed")
        literal = token_spans(tok, text, spans, method="literal")
        assert token_spans(tok, text, spans) == literal
        assert literal[-1][1] == len(tok.encode(text))


def test_runtime_mismatch_warns_and_falls_back(tokenizer, monkeypatch):
    import ingest.spans as spans_mod

    tok = copy.deepcopy(tokenizer)  # its own cache entry
    text = "one\ntwo\nthree"
    spans = char_spans(text, ["one", "two", "three"])
    literal = token_spans(tok, text, spans, method="literal")

    def wrong(tokenizer, text, cuts):
        return {c: 0 for c in cuts}

    monkeypatch.setattr(spans_mod, "windowed_prefix_lengths", wrong)
    with pytest.raises(RuntimeError, match="disagree"):
        token_spans(tok, text, spans, method="windowed")
    with pytest.warns(RuntimeWarning, match="disagree"):
        assert token_spans(tok, text, spans) == literal
    assert "run-time mismatch" in windowed_support(tok)
    assert token_spans(tok, text, spans) == literal  # no second warning needed: literal now


@needs_data
def test_windowed_equals_literal_on_all_shared_rollouts(tokenizer):
    """The acceptance test: identical spans on every labelled rollout, both text sources."""
    from ingest.rollouts import load_all

    rollouts = load_all([ROLLOUTS]).rollouts
    assert len(rollouts) == len(list(ROLLOUTS.rglob("chunks_labeled.json")))
    n_texts = n_cuts = 0
    for r in rollouts:
        texts = {"chunks": ("\n".join(r.sentences), False)}
        full_cot = r.metadata.get("base_solution", {}).get("full_cot")
        if isinstance(full_cot, str):
            texts["full_cot"] = (full_cot, True)
        for source, (text, tolerant) in texts.items():
            spans = char_spans(text, r.sentences, whitespace_tolerant=tolerant)
            got = token_spans(tokenizer, text, spans, method="windowed")
            cuts = [s.start for s in spans if s.found] + [s.end for s in spans if s.found]
            ref = backend_prefix_lengths(tokenizer, text, cuts + [len(text)])
            assert ref[len(text)] == len(tokenizer.encode(text))  # the backend is `encode`
            expected = [
                ((ref[s.start] if s.start else 0), ref[s.end]) if s.found else (0, 0) for s in spans
            ]
            assert got == expected, (r.rollout_id, source)
            n_texts += 1
            n_cuts += len(set(cuts))
    assert n_texts >= 2 * len(rollouts) - 10 and n_cuts > 10_000
