"""Fused capture of sentence-averaged attention (METRICS.md §3), layer by layer.

A custom attention function is registered with transformers' `AttentionInterface` under
`CAPTURE_ATTN_IMPLEMENTATION`. Outside a capture it is plain SDPA. While a capture is active
(a per-call context carried by a `ContextVar`), it computes the token attention
probabilities in float32, block by block over query rows, and uses each block twice: for
the layer's output (`P @ V`, so the model runs attention once, not SDPA plus a recompute)
and, reduced at once, for per-head sentence sums. The full `T x T` matrix of all heads is
never materialized: extra memory is `O(heads x query_block x T)`.

Masks: no mask function is registered for the capture implementation, so transformers hands
the function `attention_mask=None` and causality (and a layer's sliding window, passed as
`sliding_window`) is applied here. If a caller registers a mask function (bool or additive
4-D mask, e.g. for padding), the given mask is applied instead; both paths are tested.
Logit softcapping, position biases and attention sinks are refused with a CaptureError.

Public API: `capture_sentence_attention` (streams `[H, N, N]` per layer to a callback),
`sentence_attention` (collects `[L, H, N, N]`) and `reference_sentence_attention` (the
notebook's eager algorithm, for tests and benchmarks).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward

CAPTURE_ATTN_IMPLEMENTATION = "va_sentence_capture"
DEFAULT_QUERY_BLOCK = 256
# The CPU path (PyTorch's flash kernel, `_flash_chunk_sums`) takes query blocks and key
# chunks of at least this many tokens: per-call overhead dominates smaller ones.
FLASH_MIN_CHUNK = 1024

LayerCallback = Callable[[int, np.ndarray], None]


class CaptureError(Exception):
    """The fused attention capture cannot run on this model or input."""


class CaptureOOMError(CaptureError):
    """The fused attention capture ran out of memory."""


# --------------------------------------------------------------------------- span plan


@dataclass(frozen=True)
class SpanPlan:
    """Token spans of METRICS.md §3, clipped and cut into elementary token segments.

    Segments are the maximal token ranges between span boundaries that some non-empty
    clipped span covers; every sentence is a contiguous run `[seg_lo, seg_hi)` of them, and
    every token belongs to at most one segment (id `n_segments` = no sentence). Overlapping
    spans therefore cost nothing special.
    """

    n_tokens: int
    n_segments: int
    segment_of_token: np.ndarray  # [T] int64, n_segments for tokens in no sentence
    seg_lo: np.ndarray  # [N] int64
    seg_hi: np.ndarray  # [N] int64
    length: np.ndarray  # [N] float64: e'_k - s'_k for valid spans, 0 otherwise
    valid: np.ndarray  # [N] bool: s'_k < e'_k

    @property
    def n_sentences(self) -> int:
        return len(self.valid)


def plan_spans(token_spans: Sequence[tuple[int, int]], n_tokens: int) -> SpanPlan:
    """Clip spans as METRICS.md §3 (`s' = min(s, T-1)`, `e' = min(e, T-1)`) and segment them."""
    if n_tokens < 1:
        raise CaptureError("the input has no tokens")
    spans = np.asarray(list(token_spans), dtype=np.int64).reshape(-1, 2)
    if (spans < 0).any():
        raise CaptureError("token spans must be non-negative")
    n = len(spans)
    s = np.minimum(spans[:, 0], n_tokens - 1)
    e = np.minimum(spans[:, 1], n_tokens - 1)
    valid = s < e
    length = np.where(valid, e - s, 0).astype(np.float64)
    bounds = np.unique(np.concatenate([s[valid], e[valid]]))
    seg_of_tok = np.empty(n_tokens, dtype=np.int64)
    seg_lo = np.zeros(n, dtype=np.int64)
    seg_hi = np.zeros(n, dtype=np.int64)
    if len(bounds) < 2:
        seg_of_tok.fill(0)
        return SpanPlan(n_tokens, 0, seg_of_tok, seg_lo, seg_hi, length, valid)
    # Elementary pieces [bounds[m], bounds[m+1]); coverage by a difference array.
    bi_s = np.searchsorted(bounds, s[valid])
    bi_e = np.searchsorted(bounds, e[valid])
    diff = np.zeros(len(bounds), dtype=np.int64)
    np.add.at(diff, bi_s, 1)
    np.add.at(diff, bi_e, -1)
    covered = np.cumsum(diff)[:-1] > 0  # [pieces]
    kept_index = np.cumsum(covered) - 1  # piece -> segment id (valid where covered)
    n_seg = int(covered.sum())
    seg_of_tok.fill(n_seg)
    starts, ends = bounds[:-1][covered], bounds[1:][covered]
    for k, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        seg_of_tok[a:b] = k
    seg_lo[valid] = kept_index[bi_s]
    seg_hi[valid] = kept_index[bi_e - 1] + 1
    return SpanPlan(n_tokens, n_seg, seg_of_tok, seg_lo, seg_hi, length, valid)


def sentence_means_from_segment_sums(plan: SpanPlan, seg_sums: np.ndarray) -> np.ndarray:
    """`[H, G, G]` segment sums -> `[H, N, N]` float32 rectangle means (METRICS.md §3)."""
    h = seg_sums.shape[0]
    n = plan.n_sentences
    out = np.zeros((h, n, n), dtype=np.float32)
    if plan.n_segments == 0 or not plan.valid.any():
        return out
    idx = np.flatnonzero(plan.valid)
    lo, hi = plan.seg_lo[idx], plan.seg_hi[idx]
    if np.all(hi - lo == 1):
        # Common case, no overlapping spans: one segment per sentence.
        sums = seg_sums[:, lo[:, None], lo[None, :]].astype(np.float64)
    else:
        # Overlaps: sentence sums through a segment-membership indicator. Exact zeros stay
        # exactly zero (unlike prefix-sum differences), so A[i, j] = 0 for j > i holds exactly.
        member = np.zeros((plan.n_segments, len(idx)), dtype=np.float64)  # [segment, sentence]
        for col, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
            member[a:b, col] = 1.0
        sums = member.T @ seg_sums.astype(np.float64) @ member  # [head, sentence, sentence]
    area = plan.length[idx][:, None] * plan.length[idx][None, :]
    out[:, idx[:, None], idx[None, :]] = (sums / area).astype(np.float32)
    return out


# --------------------------------------------------------------------------- the kernel


def segment_attention_sums(
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    scaling: float,
    causal: bool,
    segment_of_token: torch.Tensor,
    n_segments: int,
    query_block: int = DEFAULT_QUERY_BLOCK,
    workspace: dict | None = None,
    value: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    sliding_window: int | None = None,
    method: str = "auto",
) -> torch.Tensor:
    """Per-head sums of the attention probabilities over (query segment, key segment) pairs.

    `P = softmax(Q K^T * scaling + mask)` in float32, computed `query_block` query rows at a
    time and reduced at once; returns `[head, segment, segment]` float32. With `value` and
    `out` it is also the layer's attention: `out` (`[batch, query_pos, head, d_head]`, the
    layout `sdpa_attention_forward` returns) receives `P @ V` from the same probabilities,
    so the model needs no second attention pass. `sliding_window` W (with no explicit mask)
    keeps keys `q - W < k <= q`, as transformers' sliding-window mask. `workspace` (a dict
    kept across layers) reuses the score and output buffers instead of allocating (and
    page-faulting) fresh ones per block.

    `method`: 'blocks' (matmuls and a softmax per query block; any mask, any device),
    'flash' (PyTorch's CPU flash kernel by chunks, `_flash_chunk_sums`: needs `value`, the
    causal or no mask, no window, no cache, a CPU), or 'auto' (flash where it applies).
    """
    # query: [batch, head, query_pos, d_head]; key, value: [batch, kv_head, key_pos, d_head]
    batch, n_heads, t_q, d_head = query.shape
    n_kv, t_k = key.shape[1], key.shape[2]
    if batch != 1:
        raise CaptureError(f"the capture takes one sequence at a time, got batch size {batch}")
    if n_heads % n_kv:
        raise CaptureError(f"{n_heads} query heads are not a multiple of {n_kv} key/value heads")
    if (value is None) != (out is None):
        raise ValueError("value and out go together")
    group = n_heads // n_kv  # query head h reads kv head h // group
    offset = t_k - t_q  # 0 without a cache
    device = query.device
    seg = segment_of_token.to(device)
    seg_cpu = segment_of_token.cpu()
    sink = n_segments  # segment id of tokens in no sentence; dropped at the end
    own_mask = attention_mask is None  # causality and the window are applied here
    window = sliding_window if own_mask else None
    flash_applies = (value is not None and own_mask and window is None and offset == 0
                     and device.type == "cpu" and flash_chunks_available())
    if method not in ("auto", "flash", "blocks"):
        raise ValueError(f"unknown method {method!r} (auto, flash or blocks)")
    if method == "flash" and not flash_applies:
        raise CaptureError("the flash path needs a value, no explicit mask or window, and a CPU")
    if flash_applies and method != "blocks":
        return _flash_chunk_sums(query, key, value, out, scaling=scaling, causal=causal,
                                 segment_of_token=seg_cpu, n_segments=n_segments,
                                 query_block=query_block)

    # Scaled once here instead of per block: [kv_head, group, query_pos, d_head]
    q = (query[0].float() * scaling).reshape(n_kv, group, t_q, d_head)
    k_t = key[0].float().transpose(1, 2)  # [kv_head, d_head, key_pos]
    v = None if value is None else value[0].float()  # [kv_head, key_pos, d_value]
    if not own_mask:
        mask = attention_mask[0]  # [1 or head, query_pos, key_pos]
        if mask.dtype != torch.bool:
            mask = mask.float()
        mask = mask.expand(n_heads, t_q, t_k).reshape(n_kv, group, t_q, t_k)
    sums = torch.zeros(n_heads, n_segments + 1, n_segments + 1, dtype=torch.float32, device=device)
    qb = max(1, min(int(query_block), t_q))
    # A tile is (some KV heads with their query heads) x (query block) x keys. On a CPU one
    # KV head's group per tile keeps the tile in cache across the passes over it (scores,
    # softmax, P @ V, reduction); a GPU takes all heads at once (fewer kernel launches).
    kv_per_tile = n_kv if device.type == "cuda" else 1
    rows_per_tile = kv_per_tile * group
    triangle = torch.ones(qb, qb, dtype=torch.bool, device=device).triu_(1)  # key > query
    scores_buf = _buffer(workspace, "scores", rows_per_tile * qb * t_k, device)
    out_buf = None if v is None else _buffer(workspace, "out", n_heads * qb * v.shape[-1], device)
    for q0 in range(0, t_q, qb):
        q1 = min(t_q, q0 + qb)
        b = q1 - q0
        rows_seg = seg_cpu[q0 + offset : q1 + offset]  # [query_pos]
        runs = _segment_runs(rows_seg, sink)  # [(first row, end row, segment)]
        if v is None and not runs:
            continue  # no query row of this block belongs to a sentence, no output wanted
        k_end = q1 + offset if (causal and own_mask) else t_k
        k_lo = 0 if window is None else max(0, q0 + offset - window + 1)
        width = k_end - k_lo
        band = None
        if own_mask and window is not None:
            rows = torch.arange(q0 + offset, q1 + offset, device=device)[:, None]
            band = torch.arange(k_lo, k_end, device=device)[None, :] <= rows - window  # [q, k]
        run_rows = None
        if runs:  # [run, query_pos]: 1 where a row belongs to the run
            run_rows = torch.zeros(len(runs), b, dtype=torch.float32, device=device)
            for r, (r0, r1, _) in enumerate(runs):
                run_rows[r, r0:r1] = 1.0
            run_segments = torch.tensor([s for _, _, s in runs], device=device)
        if v is not None:
            o_blk = out_buf[: n_heads * b * v.shape[-1]].view(n_kv, group * b, v.shape[-1])
        for h0 in range(0, n_kv, kv_per_tile):
            h1 = h0 + kv_per_tile
            tile = (h1 - h0) * group  # query heads in this tile
            q_blk = q[h0:h1, :, q0:q1].reshape(h1 - h0, group * b, d_head)
            scores = scores_buf[: tile * b * width].view(h1 - h0, group * b, width)
            torch.bmm(q_blk, k_t[h0:h1, :, k_lo:k_end], out=scores)  # [kv, group * q, key]
            scores = scores.view(tile, b, width)  # [head, query_pos, key_pos]
            if own_mask:
                if causal:
                    scores[:, :, q0 + offset - k_lo :].masked_fill_(triangle[:b, :b], -math.inf)
                if band is not None:
                    scores.masked_fill_(band, -math.inf)
            else:
                tile_mask = mask[h0:h1, :, q0:q1, k_lo:k_end].reshape(tile, b, width)
                if tile_mask.dtype == torch.bool:
                    scores.masked_fill_(~tile_mask, -math.inf)
                else:
                    scores.add_(tile_mask)
            # Softmax over keys in place (P of METRICS.md §3), row by row.
            torch.ops.aten._softmax.out(scores, -1, False, out=scores)
            if v is not None:  # the layer's output from the same probabilities
                torch.bmm(scores.view(h1 - h0, group * b, width), v[h0:h1, k_lo:k_end],
                          out=o_blk[h0:h1])  # [kv, group * query_pos, d_value]
            if run_rows is None:
                continue
            # Query side first: rows -> runs (one segment each) in one matmul shrinks
            # [head, query_pos, key_pos] to [head, run, key_pos]; then keys -> segments.
            by_run = torch.matmul(run_rows, scores)  # [head, run, key_pos]
            by_seg = torch.zeros(tile, len(runs), n_segments + 1, dtype=torch.float32, device=device)
            by_seg.index_add_(2, seg[k_lo:k_end], by_run)  # [head, run, key_segment]
            sums[h0 * group : h1 * group].index_add_(1, run_segments, by_seg)  # [head, q_seg, k_seg]
        if v is not None:  # [query_pos, head, d_value]
            out[0, q0:q1] = o_blk.view(n_heads, b, -1).transpose(0, 1)
    return sums[:, :n_segments, :n_segments]


def flash_chunks_available() -> bool:
    return hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu")


def _flash_chunk_sums(query, key, value, out, *, scaling: float, causal: bool,
                      segment_of_token: torch.Tensor, n_segments: int,
                      query_block: int) -> torch.Tensor:
    """The CPU path of `segment_attention_sums`: PyTorch's flash kernel, one pass, by chunks.

    Query blocks and key chunks are `max(query_block, FLASH_MIN_CHUNK)` tokens.

    On a CPU PyTorch's flash-attention kernel runs far faster than separate matmuls and a
    softmax (its tiles stay in cache). Keys are cut into chunks of `query_block` tokens and
    each chunk's value rows are extended with a one-hot of the chunk's sentence segments
    (query and key padded with zeros to the same width, which leaves `Q K^T` unchanged), so
    one kernel call per (query block, key chunk) returns, from the same float32
    probabilities, the chunk's share of the output `P @ V`, each row's sums per key segment,
    and the row's log-sum-exp over the chunk. The log-sum-exps combine the chunks exactly
    (`P = exp(lse_chunk - lse_row) * P_chunk`), as flash attention does across its tiles.
    """
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    # query: [batch, head, query_pos, d_head]; key, value: [batch, kv_head, key_pos, d]
    _, n_heads, t, d_head = query.shape
    d_value = value.shape[-1]
    # Fewer, larger kernel calls win on a CPU; each chunk widens the heads by its segments.
    blk = max(1, min(max(int(query_block), FLASH_MIN_CHUNK), t))
    seg = segment_of_token.to(torch.int64)  # [key_pos], n_segments = in no sentence
    chunks = [(c0, min(t, c0 + blk)) for c0 in range(0, t, blk)]
    first = [int(seg[c0:c1][seg[c0:c1] < n_segments].min()) if bool((seg[c0:c1] < n_segments).any())
             else n_segments for c0, c1 in chunks]  # first segment of each chunk
    local = seg.clone()  # key -> column within its chunk's one-hot
    width = 0
    for (c0, c1), g0 in zip(chunks, first, strict=True):
        local[c0:c1] -= g0
        inside = seg[c0:c1] < n_segments
        if inside.any():
            width = max(width, int(local[c0:c1][inside].max()) + 1)
    pad = max(d_head, d_value + width) - d_head  # q, k and v must share one head size
    d_all = d_head + pad

    def widen(x: torch.Tensor, extra: int) -> torch.Tensor:  # [1, head, pos, d] -> zero-padded
        x = x.float()
        return torch.nn.functional.pad(x, (0, extra)) if extra else x.contiguous()

    # The kernel maps query head h to key/value head h // group itself (GQA, no copies).
    q = widen(query, pad)  # [1, head, query_pos, d_all]
    k = widen(key, pad)  # [1, kv_head, key_pos, d_all]
    v = widen(value, d_all - d_value)  # [1, kv_head, key_pos, d_all]: V, then segment one-hots
    in_sentence = torch.nonzero(seg < n_segments).flatten()
    v[0, :, in_sentence, d_value + local[in_sentence]] = 1.0
    sums = torch.zeros(n_heads, n_segments + 1, n_segments + 1, dtype=torch.float32)
    for q0, q1 in chunks:
        parts = []  # (first segment, [head, query_pos, d_all] chunk output, [head, query_pos] lse)
        for (c0, c1), g0 in zip(chunks, first, strict=True):
            if causal and c0 > q0:
                break
            o, lse = flash(q[:, :, q0:q1], k[:, :, c0:c1], v[:, :, c0:c1], 0.0,
                           causal and c0 == q0, scale=scaling)
            parts.append((g0, o[0], lse[0]))
        lses = torch.stack([lse for _, _, lse in parts])  # [chunk, head, query_pos]
        weights = torch.exp(lses - torch.logsumexp(lses, dim=0))  # each chunk's share of a row
        runs = _segment_runs(seg[q0:q1], n_segments)
        if runs:  # [run, query_pos]: 1 where a row belongs to the run
            run_rows = torch.zeros(len(runs), q1 - q0)
            for r, (r0, r1, _) in enumerate(runs):
                run_rows[r, r0:r1] = 1.0
            run_segments = torch.tensor([s for _, _, s in runs])
        acc = torch.zeros(n_heads, q1 - q0, d_value)  # [head, query_pos, d_value]
        for (g0, o, _), w in zip(parts, weights, strict=True):
            acc.addcmul_(w[..., None], o[:, :, :d_value])
            span = min(width, n_segments + 1 - g0)
            if not runs or span <= 0:
                continue
            # rows -> runs, weighted by the chunk's share: [head, run, key segment of the chunk]
            by_run = torch.bmm(run_rows * w[:, None, :], o[:, :, d_value : d_value + span])
            sums[:, :, g0 : g0 + span].index_add_(1, run_segments, by_run)
        out[0, q0:q1] = acc.transpose(0, 1)  # [query_pos, head, d_value]
    return sums[:, :n_segments, :n_segments].to(query.device)


def _segment_runs(rows_seg: torch.Tensor, sink: int) -> list[tuple[int, int, int]]:
    """Maximal runs of equal segment ids in a block's rows, without the no-sentence sink."""
    ids = rows_seg.tolist()
    runs, start = [], 0
    for r in range(1, len(ids) + 1):
        if r == len(ids) or ids[r] != ids[start]:
            if ids[start] != sink:
                runs.append((start, r, ids[start]))
            start = r
    return runs


def _buffer(workspace: dict | None, name: str, numel: int, device) -> torch.Tensor:
    """A float32 scratch buffer of at least `numel` elements, kept in `workspace` across layers."""
    buf = None if workspace is None else workspace.get(name)
    if buf is None or buf.numel() < numel or buf.device != device:
        buf = torch.empty(numel, dtype=torch.float32, device=device)
        if workspace is not None:
            workspace[name] = buf
    return buf


# --------------------------------------------------------------------------- registration


@dataclass
class _CaptureState:
    plan: SpanPlan
    segment_of_token: torch.Tensor
    query_block: int
    on_layer: LayerCallback
    layers_seen: list[int]
    workspace: dict = field(default_factory=dict)


_ACTIVE: contextvars.ContextVar[_CaptureState | None] = contextvars.ContextVar(
    "va_sentence_capture", default=None
)


def capture_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Attention function for `AttentionInterface`: one pass for the output and the capture.

    Outside `capture_sentence_attention` it is exactly transformers' `sdpa_attention_forward`.
    During a capture the layer's output is `P @ V` from the same float32 probabilities that
    are reduced into sentence sums (`segment_attention_sums`), so attention runs once.
    """
    state = _ACTIVE.get()
    if state is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    for name in ("softcap", "position_bias", "s_aux"):
        if kwargs.get(name) is not None:
            raise CaptureError(f"attention option '{name}' (logit softcap, position bias or "
                               "attention sinks) is not supported by the capture")
    if dropout:
        raise CaptureError("attention dropout is not supported by the capture (call model.eval())")
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    # [batch, query_pos, head, d_value]: the layout sdpa_attention_forward returns
    attn_output = torch.empty(query.shape[0], query.shape[2], query.shape[1], value.shape[-1],
                              dtype=query.dtype, device=query.device)
    seg_sums = segment_attention_sums(
        query,
        key,
        attention_mask,
        scaling=scale,
        causal=bool(causal),
        segment_of_token=state.segment_of_token,
        n_segments=state.plan.n_segments,
        query_block=state.query_block,
        workspace=state.workspace,
        value=value,
        out=attn_output,
        sliding_window=kwargs.get("sliding_window"),
    )  # [head, segment, segment]
    means = sentence_means_from_segment_sums(state.plan, seg_sums.cpu().numpy())
    layer_idx = int(getattr(module, "layer_idx", len(state.layers_seen)))
    state.layers_seen.append(layer_idx)
    state.on_layer(layer_idx, means)  # [head, sentence_i, sentence_j]
    return attn_output, None


def register_capture_attention() -> bool:
    """Register the capture function with `AttentionInterface`; True if newly registered."""
    if AttentionInterface._global_mapping.get(CAPTURE_ATTN_IMPLEMENTATION) is capture_attention_forward:
        return False
    AttentionInterface.register(CAPTURE_ATTN_IMPLEMENTATION, capture_attention_forward)
    return True


def unregister_capture_attention() -> None:
    """Remove the capture function from `AttentionInterface`."""
    AttentionInterface._global_mapping.pop(CAPTURE_ATTN_IMPLEMENTATION, None)


# --------------------------------------------------------------------------- public API


def base_model(loaded_or_model) -> PreTrainedModel:
    """The transformer without LM head from a `LoadedModel`, a `*ForCausalLM` or a base model."""
    if isinstance(loaded_or_model, PreTrainedModel):
        model = loaded_or_model
    else:
        model = getattr(loaded_or_model, "model", None)
    if not isinstance(model, PreTrainedModel):
        raise CaptureError(f"expected a LoadedModel or a transformers model, got {type(model)}")
    return model.base_model


def model_name(model: PreTrainedModel) -> str:
    return str(getattr(model.config, "_name_or_path", "") or type(model).__name__)


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text
    )


def _check_input(input_ids: torch.Tensor) -> int:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[0] != 1:
        shape = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids)
        raise CaptureError(f"input_ids must be a LongTensor of shape [1, T], got {shape}")
    return int(input_ids.shape[1])


def capture_sentence_attention(
    loaded_or_model,
    input_ids: torch.Tensor,
    token_spans: Sequence[tuple[int, int]],
    *,
    query_block: int = DEFAULT_QUERY_BLOCK,
    on_layer: LayerCallback,
) -> torch.Tensor:
    """Run the base model once and call `on_layer(layer_idx, A)` as each layer finishes.

    `A` is float32 `[H, N, N]`: the sentence-averaged attention of METRICS.md §3 for every
    query head of that layer. Only one layer's result is alive at a time. Returns the last
    layer's hidden states (`[1, T, hidden]`), computed from the capture's own attention.
    """
    model = base_model(loaded_or_model)
    n_tokens = _check_input(input_ids)
    plan = plan_spans(token_spans, n_tokens)
    device = next(model.parameters()).device
    state = _CaptureState(
        plan=plan,
        segment_of_token=torch.from_numpy(plan.segment_of_token).to(device),
        query_block=query_block,
        on_layer=on_layer,
        layers_seen=[],
    )
    newly_registered = register_capture_attention()
    old_impl = model.config._attn_implementation
    token = _ACTIVE.set(state)
    try:
        model.config._attn_implementation = CAPTURE_ATTN_IMPLEMENTATION
        with torch.inference_mode():
            hidden = model(input_ids=input_ids.to(device), use_cache=False).last_hidden_state
    except CaptureError:
        raise
    except (RuntimeError, MemoryError) as exc:
        if _is_oom(exc):
            raise CaptureOOMError(
                f"model '{model_name(model)}' ran out of memory capturing attention for "
                f"{n_tokens} tokens with query_block={query_block} on {device}: try a smaller "
                "query block, the CPU (device='cpu'), or dtype='bfloat16'"
            ) from exc
        raise
    finally:
        _ACTIVE.reset(token)
        model.config._attn_implementation = old_impl
        if newly_registered:
            unregister_capture_attention()
    n_layers = model.config.get_text_config().num_hidden_layers
    if len(state.layers_seen) != n_layers:
        raise CaptureError(
            f"model '{model_name(model)}' reported {len(state.layers_seen)} of {n_layers} layers: "
            "its attention does not go through transformers' AttentionInterface"
        )
    return hidden


def sentence_attention(
    loaded_or_model,
    input_ids: torch.Tensor,
    token_spans: Sequence[tuple[int, int]],
    *,
    query_block: int = DEFAULT_QUERY_BLOCK,
) -> np.ndarray:
    """All layers' sentence attention, float32 `[L, H, N, N]` (convenience over the stream)."""
    layers: dict[int, np.ndarray] = {}

    def keep(layer_idx: int, means: np.ndarray) -> None:
        layers[layer_idx] = means

    capture_sentence_attention(
        loaded_or_model, input_ids, token_spans, query_block=query_block, on_layer=keep
    )
    return np.stack([layers[k] for k in sorted(layers)])


def reference_sentence_attention(
    loaded_or_model, input_ids: torch.Tensor, token_spans: Sequence[tuple[int, int]]
) -> np.ndarray:
    """The notebook's algorithm: eager attention, all layers materialized, a Python pair loop.

    float32 `[L, H, N, N]`. Slow and memory-hungry (`L x H x T x T` floats); for tests and
    benchmarks only.
    """
    model = base_model(loaded_or_model)
    n_tokens = _check_input(input_ids)
    device = next(model.parameters()).device
    old_impl = model.config._attn_implementation
    try:
        model.config._attn_implementation = "eager"
        with torch.inference_mode():
            out = model(input_ids=input_ids.to(device), use_cache=False, output_attentions=True)
    finally:
        model.config._attn_implementation = old_impl
    attentions = out.attentions  # L x [batch, head, query_pos, key_pos]
    n = len(token_spans)
    result = np.zeros((len(attentions), attentions[0].shape[1], n, n), dtype=np.float32)
    for layer, att in enumerate(attentions):
        heads = att[0].float().cpu().numpy()  # [head, query_pos, key_pos]
        for head in range(heads.shape[0]):
            mat = heads[head]
            for i, (s_i, e_i) in enumerate(token_spans):
                s_i, e_i = min(s_i, n_tokens - 1), min(e_i, n_tokens - 1)
                for j, (s_j, e_j) in enumerate(token_spans):
                    s_j, e_j = min(s_j, n_tokens - 1), min(e_j, n_tokens - 1)
                    if s_i >= e_i or s_j >= e_j:
                        continue
                    result[layer, head, i, j] = mat[s_i:e_i, s_j:e_j].mean()
    return result
