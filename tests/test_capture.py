"""Fused sentence-attention capture vs the eager reference (METRICS.md §3, §9).

Real model (tiny random-weight Qwen3 with the real tokenizer), real traces, no mocks.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ingest.capture import (
    CAPTURE_ATTN_IMPLEMENTATION,
    CaptureError,
    _is_oom,
    capture_sentence_attention,
    plan_spans,
    reference_sentence_attention,
    segment_attention_sums,
    sentence_attention,
    sentence_means_from_segment_sums,
)
from ingest.model import ModelLoadError, describe_model, load_model
from ingest.spans import char_spans, token_spans
from ingest.tiny_model import write_tiny_qwen3

pytestmark = pytest.mark.slow

ATOL = 1e-5  # METRICS.md §9
ROLLOUTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "rollouts"
SESGO = ROLLOUTS / "sesgo"
TRACES = [
    SESGO / "qwen3p7-plus/temperature_0.6_top_p_0.95/en/disambig/item_6",
    SESGO / "claude-sonnet-4-6/temperature_0.6_top_p_0.95/en/ambig/item_3",
    ROLLOUTS / "math/deepseek-r1-distill-llama-8b/incorrect_base_solution/problem_2189",
]
needs_data = pytest.mark.skipif(
    not all(d.is_dir() for d in TRACES),
    reason=f"shared rollout data not found under {ROLLOUTS} (the traces used: {TRACES})",
)


def sentences_of(d: Path) -> list[str]:
    if (d / "chunks.json").is_file():
        return json.loads((d / "chunks.json").read_text())["chunks"]
    return [c["chunk"] for c in json.loads((d / "chunks_labeled.json").read_text())]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_qwen3(tmp_path_factory.mktemp("tiny") / "qwen3", n_heads=8, n_kv_heads=2)


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return load_model(str(tiny_dir), device="cpu", dtype="float32", offline=True)


def prepare(loaded, d: Path):
    sentences = sentences_of(d)
    text = "\n".join(sentences)
    spans = token_spans(loaded.tokenizer, text, char_spans(text, sentences))
    return loaded.encode(text), spans


@needs_data
@pytest.mark.parametrize("trace", TRACES, ids=lambda d: d.name)
def test_fused_equals_eager_reference_on_real_traces(loaded, trace):
    ids, spans = prepare(loaded, trace)
    ref = reference_sentence_attention(loaded, ids, spans)
    got = sentence_attention(loaded, ids, spans)
    info = loaded.info
    assert got.shape == ref.shape == (info.n_layers, info.n_heads, len(spans), len(spans))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=0, atol=ATOL)
    assert np.all(np.triu(got, k=1) == 0)  # A[i, j] = 0 exactly for j > i
    assert got.max() > 0.01  # attention is not trivially uniform/zero


@needs_data
@pytest.mark.parametrize("query_block", [1, 7, 50, 100_000])
def test_query_block_sizes(loaded, query_block):
    ids, spans = prepare(loaded, TRACES[0])
    t = ids.shape[1]
    assert query_block == 100_000 or t % query_block or query_block == 1
    ref = reference_sentence_attention(loaded, ids, spans)
    got = sentence_attention(loaded, ids, spans, query_block=query_block)
    np.testing.assert_allclose(got, ref, rtol=0, atol=ATOL)


@needs_data
def test_streams_layers_in_order_and_cleans_up(tiny_dir):
    from transformers import AttentionInterface, AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)  # plain sdpa, with LM head
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    sentences = sentences_of(TRACES[1])
    text = "\n".join(sentences)
    spans = token_spans(tok, text, char_spans(text, sentences))
    ids = torch.tensor([tok.encode(text)])
    registered_before = CAPTURE_ATTN_IMPLEMENTATION in AttentionInterface._global_mapping
    seen = []
    capture_sentence_attention(
        model, ids, spans, query_block=64, on_layer=lambda i, a: seen.append((i, a.shape, a.dtype))
    )
    n = len(spans)
    assert seen == [(i, (8, n, n), np.float32) for i in range(4)]
    assert model.config._attn_implementation == "sdpa"
    assert (CAPTURE_ATTN_IMPLEMENTATION in AttentionInterface._global_mapping) == registered_before


@needs_data
@pytest.mark.parametrize("mask_kind", ["bool", "additive"])
def test_explicit_mask_path_equals_reference(loaded, mask_kind):
    """With a registered mask function the capture gets a 4-D mask instead of None."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask, sdpa_mask

    def bool_mask(*args, **kwargs):
        kwargs["allow_is_causal_skip"] = False
        return sdpa_mask(*args, **kwargs)

    ids, spans = prepare(loaded, TRACES[2])
    ref = reference_sentence_attention(loaded, ids, spans)
    seen_masks = []

    from ingest import capture as capture_module

    original = capture_module.segment_attention_sums

    def spy(query, key, attention_mask, **kw):  # records the mask, computes for real
        seen_masks.append(None if attention_mask is None else attention_mask.dtype)
        return original(query, key, attention_mask, **kw)

    ALL_MASK_ATTENTION_FUNCTIONS.register(
        CAPTURE_ATTN_IMPLEMENTATION, bool_mask if mask_kind == "bool" else eager_mask
    )
    capture_module.segment_attention_sums = spy
    try:
        got = sentence_attention(loaded, ids, spans, query_block=33)
    finally:
        capture_module.segment_attention_sums = original
        ALL_MASK_ATTENTION_FUNCTIONS._global_mapping.pop(CAPTURE_ATTN_IMPLEMENTATION, None)
    expected_dtype = torch.bool if mask_kind == "bool" else torch.float32
    assert seen_masks == [expected_dtype] * loaded.info.n_layers
    np.testing.assert_allclose(got, ref, rtol=0, atol=ATOL)
    # and the default path really receives no mask
    seen_masks.clear()
    capture_module.segment_attention_sums = spy
    try:
        sentence_attention(loaded, ids, spans)
    finally:
        capture_module.segment_attention_sums = original
    assert seen_masks == [None] * loaded.info.n_layers


def dense_reference_sums(q, k, scale, seg, n_seg):
    """Plain float64 softmax with a causal mask, then per-segment sums."""
    h, kv = q.shape[1], k.shape[1]
    kk = k[0].double().repeat_interleave(h // kv, dim=0)
    scores = q[0].double() @ kk.transpose(1, 2) * scale  # [head, query_pos, key_pos]
    t = scores.shape[-1]
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    probs = scores.masked_fill(future, -math.inf).softmax(-1)
    out = torch.zeros(h, n_seg + 1, n_seg + 1, dtype=torch.float64)
    for a in range(t):
        for b in range(t):
            out[:, seg[a], seg[b]] += probs[:, a, b]
    return out[:, :n_seg, :n_seg]


def test_causality_without_mask_kernel():
    """attention_mask=None: the kernel itself applies the causal mask (METRICS.md §3)."""
    g = torch.Generator().manual_seed(0)
    t, h, kv, d = 23, 6, 3, 8
    q = torch.randn(1, h, t, d, generator=g) * 2
    k = torch.randn(1, kv, t, d, generator=g) * 2
    plan = plan_spans([(0, 4), (4, 9), (9, 9), (10, 17), (17, 30)], t)
    seg = torch.from_numpy(plan.segment_of_token)
    expected = dense_reference_sums(q, k, 0.3, plan.segment_of_token, plan.n_segments)
    for qb in (1, 4, 5, 23, 64):
        got = segment_attention_sums(
            q, k, None, scaling=0.3, causal=True, segment_of_token=seg,
            n_segments=plan.n_segments, query_block=qb,
        )
        np.testing.assert_allclose(got.double().numpy(), expected.numpy(), atol=1e-6)
    means = sentence_means_from_segment_sums(plan, expected.numpy())
    assert np.all(np.triu(means, 1) == 0) and np.all(means[:, 2, :] == 0)


@needs_data
def test_causality_future_tokens_do_not_change_the_past(loaded):
    sentences = sentences_of(TRACES[0])
    text = "\n".join(sentences)
    spans = token_spans(loaded.tokenizer, text, char_spans(text, sentences))
    ids = loaded.encode(text)
    changed = ids.clone()
    cut = spans[-1][0]  # tokens of the last sentence only
    changed[0, cut:] = (changed[0, cut:] * 7 + 13) % 150000
    a = sentence_attention(loaded, ids, spans)
    b = sentence_attention(loaded, changed, spans)
    np.testing.assert_allclose(a[:, :, :-1, :-1], b[:, :, :-1, :-1], rtol=0, atol=1e-6)
    assert np.abs(a[:, :, -1] - b[:, :, -1]).max() > 1e-4
    # the model's own output under the capture equals eager's: SDPA got causality right
    with torch.inference_mode():
        model = loaded.model
        model.config._attn_implementation = "eager"
        eager = model(input_ids=ids).last_hidden_state
        model.config._attn_implementation = CAPTURE_ATTN_IMPLEMENTATION
        capture = model(input_ids=ids).last_hidden_state
    torch.testing.assert_close(capture, eager, rtol=1e-5, atol=1e-5)


@needs_data
def test_empty_missing_clipped_and_overlapping_spans(loaded):
    ids, spans = prepare(loaded, TRACES[1])
    t = ids.shape[1]
    s3 = spans[3]
    odd = list(spans)
    odd[1] = (0, 0)  # a missing sentence
    odd[2] = (s3[0], s3[0])  # a sentence with zero tokens
    odd.append((t - 1, t + 5))  # clipped to empty: s' = e' = T-1
    odd.append((s3[0] - 2, s3[1] + 3))  # overlaps its neighbours
    odd.append((0, t))  # everything (the last token never counts)
    ref = reference_sentence_attention(loaded, ids, odd)
    got = sentence_attention(loaded, ids, odd, query_block=16)
    np.testing.assert_allclose(got, ref, rtol=0, atol=ATOL)
    for k in (1, 2, len(odd) - 3):
        assert np.all(got[:, :, k, :] == 0) and np.all(got[:, :, :, k] == 0)
    ordered = got[:, :, : len(spans), : len(spans)]  # the original, ordered sentences
    assert np.all(np.triu(ordered, k=1) == 0)


@needs_data
def test_mha_model_without_gqa(tmp_path):
    d = write_tiny_qwen3(tmp_path / "mha", n_layers=2, n_heads=4, n_kv_heads=4, seed=1)
    mha = load_model(str(d), device="cpu", offline=True)
    ids, spans = prepare(mha, TRACES[0])
    np.testing.assert_allclose(
        sentence_attention(mha, ids, spans, query_block=40),
        reference_sentence_attention(mha, ids, spans),
        rtol=0,
        atol=ATOL,
    )


@needs_data
def test_bfloat16_loads_and_runs(tiny_dir, loaded):
    bf16 = load_model(str(tiny_dir), device="cpu", dtype="bfloat16", offline=True)
    assert bf16.model.dtype == torch.bfloat16
    ids, spans = prepare(bf16, TRACES[0])
    got = sentence_attention(bf16, ids, spans)
    fp32 = sentence_attention(loaded, ids, spans)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    assert np.abs(got - fp32).max() < 2e-2


def test_bad_inputs_raise_capture_error(loaded):
    with pytest.raises(CaptureError, match=r"shape \[1, T\]"):
        sentence_attention(loaded, torch.zeros(2, 5, dtype=torch.long), [(0, 2)])
    with pytest.raises(CaptureError, match="non-negative"):
        sentence_attention(loaded, torch.zeros(1, 5, dtype=torch.long), [(-1, 2)])


def test_oom_is_recognised():
    try:
        torch.empty(1 << 60, dtype=torch.uint8)
    except RuntimeError as exc:  # a real failed allocation
        assert _is_oom(exc)
    assert _is_oom(MemoryError())
    assert not _is_oom(RuntimeError("shape mismatch"))


def test_load_model_errors(tmp_path, tiny_dir):
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache.*HF_HOME"):
        load_model("nobody/no-such-model-xyz", device="cpu", offline=True)
    with pytest.raises(ModelLoadError, match="without config.json"):
        load_model(str(tmp_path), device="cpu")
    from transformers import BloomConfig

    bloom = tmp_path / "bloom"
    BloomConfig(n_layer=1, hidden_size=8, n_head=2, vocab_size=10).save_pretrained(bloom)
    with pytest.raises(ModelLoadError, match="AttentionInterface"):
        load_model(str(bloom), device="cpu")
    with pytest.raises(ModelLoadError, match="dtype"):
        load_model(str(tiny_dir), dtype="float16")
    info = describe_model(str(tiny_dir))
    assert (info.n_layers, info.n_heads, info.n_kv_heads, info.head_dim) == (4, 8, 2, 16)
    assert info.revision == "local" and info.name == "qwen3"
    json.dumps(info.config)


# --- one pass: the capture computes each layer's output itself (issue 10) ---------------


def dense_attention(q, k, v, allowed):
    """float64 softmax(Q K^T / sqrt(d)) @ V over the allowed (query, key) pairs, GQA expanded."""
    h, kv = q.shape[1], k.shape[1]
    kk = k[0].double().repeat_interleave(h // kv, dim=0)
    vv = v[0].double().repeat_interleave(h // kv, dim=0)
    scores = (q[0].double() @ kk.transpose(1, 2)) * q.shape[-1] ** -0.5
    probs = scores.masked_fill(~allowed, -math.inf).softmax(-1)  # [head, query_pos, key_pos]
    return (probs @ vv).transpose(0, 1)[None], probs  # [1, query_pos, head, d], [head, q, k]


@pytest.mark.parametrize("kind,method,min_chunk", [
    ("causal", "blocks", None), ("causal", "flash", 1), ("causal", "flash", 7),
    ("causal", "flash", 1024), ("window", "blocks", None), ("padded", "blocks", None),
])
def test_kernel_output_and_sums_under_each_mask(kind, method, min_chunk, monkeypatch):
    """P @ V and the segment sums come from one set of probabilities, for every mask kind
    and both paths (flash: one chunk, or many, whose log-sum-exps combine exactly)."""
    from ingest import capture as capture_module

    if min_chunk is not None:
        monkeypatch.setattr(capture_module, "FLASH_MIN_CHUNK", min_chunk)
    g = torch.Generator().manual_seed(1)
    t, h, kv, d, window = 29, 6, 2, 8, 5
    q, k, v = (torch.randn(1, n, t, d, generator=g) for n in (h, kv, kv))
    plan = plan_spans([(1, 6), (6, 13), (13, 20), (22, 29)], t)
    rows, cols = torch.arange(t)[:, None], torch.arange(t)[None, :]
    allowed = cols <= rows
    mask = None
    if kind == "window":
        allowed &= cols > rows - window
    if kind == "padded":  # two left-padding keys, as a 4-D bool mask of a padded batch row
        allowed &= cols >= 2
        allowed[:2, :2] = torch.eye(2, dtype=torch.bool)  # padding rows see themselves
        mask = allowed[None, None]
    expected_out, probs = dense_attention(q, k, v, allowed)
    seg = torch.from_numpy(plan.segment_of_token)
    expected_sums = torch.zeros(h, plan.n_segments + 1, plan.n_segments + 1, dtype=torch.float64)
    for a in range(t):
        for b in range(t):
            expected_sums[:, seg[a], seg[b]] += probs[:, a, b]
    for qb in (1, 4, 29):
        out = torch.empty(1, t, h, d)
        sums = segment_attention_sums(
            q, k, mask, scaling=d**-0.5, causal=True, segment_of_token=seg,
            n_segments=plan.n_segments, query_block=qb, value=v, out=out,
            sliding_window=window if kind == "window" else None, method=method,
        )
        np.testing.assert_allclose(out.double().numpy(), expected_out.numpy(), atol=1e-5)
        np.testing.assert_allclose(sums.double().numpy(),
                                   expected_sums[:, :-1, :-1].numpy(), atol=1e-5)
        # the same output as PyTorch's own SDPA given the same mask
        sdpa = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=allowed[None, None], enable_gqa=True).transpose(1, 2)
        torch.testing.assert_close(out, sdpa, rtol=1e-5, atol=1e-5)


@needs_data
def test_flash_path_in_many_chunks_equals_reference(loaded, monkeypatch):
    """The CPU flash path with 64-token chunks on a real trace: matrices and hidden states."""
    from ingest import capture as capture_module

    ids, spans = prepare(loaded, TRACES[2])
    assert ids.shape[1] > 5 * 64
    ref = reference_sentence_attention(loaded, ids, spans)
    whole = capture_sentence_attention(loaded, ids, spans, on_layer=lambda i, a: None)
    monkeypatch.setattr(capture_module, "FLASH_MIN_CHUNK", 64)
    layers = {}
    hidden = capture_sentence_attention(loaded, ids, spans, query_block=64,
                                        on_layer=lambda i, a: layers.__setitem__(i, a))
    np.testing.assert_allclose(np.stack([layers[i] for i in sorted(layers)]), ref, rtol=0, atol=ATOL)
    torch.testing.assert_close(hidden, whole, rtol=1e-5, atol=1e-5)


@needs_data
def test_hidden_states_equal_sdpa_and_eager(loaded):
    """The capture's own attention output gives the model's hidden states (float32 noise)."""
    ids, spans = prepare(loaded, TRACES[0])
    hidden = capture_sentence_attention(loaded, ids, spans, query_block=37,
                                        on_layer=lambda i, a: None)
    model = loaded.model.base_model
    old = model.config._attn_implementation
    try:
        with torch.inference_mode():
            model.config._attn_implementation = "sdpa"
            sdpa = model(input_ids=ids, use_cache=False).last_hidden_state
            model.config._attn_implementation = "eager"
            eager = model(input_ids=ids, use_cache=False).last_hidden_state
    finally:
        model.config._attn_implementation = old
    torch.testing.assert_close(hidden, sdpa, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hidden, eager, rtol=1e-5, atol=1e-5)


def test_sliding_window_layers_equal_eager():
    """A model with sliding-window layers: sentence matrices and hidden states equal eager's."""
    from transformers import Qwen3Config, Qwen3Model

    config = Qwen3Config(
        vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, use_sliding_window=True,
        sliding_window=7, max_window_layers=1, attn_implementation="sdpa",
    )
    assert config.layer_types == ["full_attention", "sliding_attention", "sliding_attention"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = Qwen3Model(config).eval()
    ids = torch.randint(0, 300, (1, 41), generator=torch.Generator().manual_seed(0))
    spans = [(0, 5), (5, 12), (12, 30), (30, 41)]
    layers = {}
    hidden = capture_sentence_attention(model, ids, spans, query_block=6,
                                        on_layer=lambda i, a: layers.__setitem__(i, a))
    got = np.stack([layers[i] for i in sorted(layers)])
    ref = reference_sentence_attention(model, ids, spans)
    np.testing.assert_allclose(got, ref, rtol=0, atol=ATOL)
    # the window matters: full attention would differ in the sliding layers
    model.config._attn_implementation = "eager"
    with torch.inference_mode():
        eager = model(input_ids=ids, use_cache=False).last_hidden_state
    torch.testing.assert_close(hidden, eager, rtol=1e-5, atol=1e-5)
    assert np.abs(ref[1:, :, 3, 0]).max() == 0  # sentence 3 cannot see sentence 0 (window 7)


def test_unsupported_attention_options_are_refused():
    from ingest.capture import _ACTIVE, _CaptureState, capture_attention_forward

    q = torch.zeros(1, 2, 3, 4)
    plan = plan_spans([(0, 3)], 3)
    state = _CaptureState(plan, torch.from_numpy(plan.segment_of_token), 8, lambda i, a: None, [])
    token = _ACTIVE.set(state)
    try:
        module = torch.nn.Module()
        with pytest.raises(CaptureError, match="softcap"):
            capture_attention_forward(module, q, q, q, None, softcap=30.0)
        with pytest.raises(CaptureError, match="s_aux"):
            capture_attention_forward(module, q, q, q, None, s_aux=torch.zeros(2))
        with pytest.raises(CaptureError, match="dropout"):
            capture_attention_forward(module, q, q, q, None, dropout=0.1)
    finally:
        _ACTIVE.reset(token)
