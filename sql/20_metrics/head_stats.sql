-- Per-head statistics of METRICS.md §6, one row per (model, rollout, layer, head) present
-- in the attention (chosen layers), on the analysed matrix B and mask m.
-- Parameters: as column_scores (tag, proximity_ignore, control_depth, score_type, trim,
-- layers, all_layers). Undefined values (the spec's NaN: empty selections, a NaN
-- operand, a zero denominator) are NULL.
-- Matrix means count every pair, the zeros above the diagonal included: the sum of the
-- stored cells of a block divided by (rows in block) * (columns in block).
-- With the ranking set of parameters (uses_kept_scores), rollouts whose attention is in
-- Parquet are served from kept scores, without reading a cell: vertical scores as kept,
-- and the block sums from the kept column and row sums and the kept target x target sum
-- TT of the tag (kept_tag_blocks): sum_in_va = Σ_{c∈T} column_sum - TT,
-- sum_out_va = Σ_{r∈T} row_sum - TT, sum_in_nonva = total - the three.
-- Other cells are scored from scratch.
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- mean_va_vert: mean of the defined v_c with m[c] true; NULL if none
--- mean_nonva_vert: mean of the defined v_c with m[c] false; NULL if none
--- delta_va_vert: ΔVA = mean_va_vert - mean_nonva_vert; NULL if either is NULL
--- mean_in_va: mean of B[r, c] over all pairs with m[r] false, m[c] true
--- mean_in_nonva: mean of B[r, c] over all pairs with m[r] false, m[c] false
--- mean_out_va: mean of B[r, c] over all pairs with m[r] true, m[c] false
--- mean_va_to_va: mean of B[r, c] over all pairs with m[r] true, m[c] true
--- lift_in_va: mean_in_va / mean_in_nonva; NULL unless both defined and the denominator is not 0
--- n_sentences: n, analysed sentences (after trim)
--- n_va: target sentences among the analysed ones
--- va_rate: n_va / max(1, n_sentences)
create or replace macro head_stats({{ params: tag, @metric }}) as table
with kept_heads as (
    select
        kept.model,
        kept.rollout_id,
        kept.layer,
        kept.head,
        any_value(kept.n_sentences) as n_sentences,
        any_value(kept.n_va) as n_va,
        avg(kept.vertical_score) filter (where kept.is_target) as mean_va_vert,
        avg(kept.vertical_score) filter (where not kept.is_target) as mean_nonva_vert,
        coalesce(sum(kept.column_sum) filter (where kept.is_target), 0) as target_column_sum,
        coalesce(sum(kept.row_sum) filter (where kept.is_target), 0) as target_row_sum,
        sum(kept.column_sum) as total_sum
    from
        tagged_kept_scores({{ pass: tag, trim, layers, all_layers }}) as kept
    where uses_kept_scores('ranking', proximity_ignore, control_depth, score_type, trim)
    group by kept.model, kept.rollout_id, kept.layer, kept.head
),

kept_sums as (
    select
        kept_heads.model,
        kept_heads.rollout_id,
        kept_heads.layer,
        kept_heads.head,
        kept_heads.n_sentences,
        kept_heads.n_va,
        kept_heads.mean_va_vert,
        kept_heads.mean_nonva_vert,
        kept_heads.target_column_sum - coalesce(blocks.sum_va_to_va, 0) as sum_in_va,
        kept_heads.total_sum - kept_heads.target_column_sum - kept_heads.target_row_sum
        + coalesce(blocks.sum_va_to_va, 0) as sum_in_nonva,
        kept_heads.target_row_sum - coalesce(blocks.sum_va_to_va, 0) as sum_out_va,
        coalesce(blocks.sum_va_to_va, 0) as sum_va_to_va
    from kept_heads
    left join tagged_kept_blocks({{ pass: tag, layers, all_layers }}) as blocks
        using (model, rollout_id, layer, head)
),

scores as (
    select *
    from
        column_scores(
            unscored_only := uses_kept_scores(
                'ranking', proximity_ignore, control_depth, score_type, trim
            ), {{ pass: tag, @metric }}
        )
),

computed_sums as (
    select
        scores.model,
        scores.rollout_id,
        scores.layer,
        scores.head,
        any_value(scores.n_sentences) as n_sentences,
        any_value(scores.n_va) as n_va,
        avg(scores.vertical_score) filter (where scores.is_target) as mean_va_vert,
        avg(scores.vertical_score) filter (where not scores.is_target) as mean_nonva_vert,
        sum(scores.sum_from_other_rows) filter (where scores.is_target) as sum_in_va,
        sum(scores.sum_from_other_rows) filter (where not scores.is_target) as sum_in_nonva,
        sum(scores.sum_from_target_rows) filter (where not scores.is_target) as sum_out_va,
        sum(scores.sum_from_target_rows) filter (where scores.is_target) as sum_va_to_va
    from scores
    group by scores.model, scores.rollout_id, scores.layer, scores.head
),

heads as (
    select * from kept_sums
    union all
    select * from computed_sums
),

block_means as (
    select
        heads.*,
        heads.sum_in_va
        / nullif((heads.n_sentences - heads.n_va) * heads.n_va, 0)::double as mean_in_va,
        heads.sum_in_nonva
        / nullif((heads.n_sentences - heads.n_va) * (heads.n_sentences - heads.n_va), 0)::double
            as mean_in_nonva,
        heads.sum_out_va
        / nullif(heads.n_va * (heads.n_sentences - heads.n_va), 0)::double as mean_out_va,
        heads.sum_va_to_va / nullif(heads.n_va * heads.n_va, 0)::double as mean_va_to_va
    from heads
)

select
    block_means.model,
    block_means.rollout_id,
    block_means.layer,
    block_means.head,
    -- vertical scores (§5, §6)
    block_means.mean_va_vert,
    block_means.mean_nonva_vert,
    block_means.mean_va_vert - block_means.mean_nonva_vert as delta_va_vert,
    -- matrix block means (§6)
    block_means.mean_in_va,
    block_means.mean_in_nonva,
    block_means.mean_out_va,
    block_means.mean_va_to_va,
    block_means.mean_in_va / nullif(block_means.mean_in_nonva, 0) as lift_in_va,
    -- analysed counts (after trim, §4)
    block_means.n_sentences,
    block_means.n_va,
    block_means.n_va / greatest(1, block_means.n_sentences)::double as va_rate
from block_means;

create or replace view head_stats as
select * from head_stats();
