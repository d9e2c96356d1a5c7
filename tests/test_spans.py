"""Sentence character spans and prefix-count token spans (METRICS.md §2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.spans import CharSpan, char_spans, normalize_spaces, token_spans

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
