-- Per-head statistics of METRICS.md §6, one row per (model, rollout, layer, head) present
-- in the attention (chosen layers), on the analysed matrix B and mask m.
-- Parameters: as column_scores (tag, proximity_ignore, control_depth, score_type, trim,
-- layers, all_layers). Undefined values (the spec's NaN: empty selections, a NaN
-- operand, a zero denominator) are NULL.
-- Matrix means count every pair, the zeros above the diagonal included: the sum of the
-- stored cells of a block divided by (rows in block) * (columns in block).
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
create or replace macro head_stats(
    tag := 'verbalized_evaluation_awareness',
    proximity_ignore := 4,
    control_depth := true,
    score_type := 'mean',
    trim := true,
    layers := null,
    all_layers := false
) as table
with scores as (
    select *
    from
        column_scores(
            tag := tag,
            proximity_ignore := proximity_ignore,
            control_depth := control_depth,
            score_type := score_type,
            trim := trim,
            layers := layers,
            all_layers := all_layers
        )
),

heads as (
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
