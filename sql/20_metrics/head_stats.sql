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
-- every analysed column of each head, kept or scored from the cells (a head is one or the
-- other); the kept ones carry column and row sums, the scored ones the sums of their
-- target and other rows
with columns as (
    select
        kept.model,
        kept.rollout_id,
        kept.layer,
        kept.head,
        true as is_kept,
        kept.n_sentences,
        kept.n_va,
        kept.is_target,
        kept.vertical_score,
        kept.column_sum,
        kept.row_sum,
        null::double as sum_from_target_rows,
        null::double as sum_from_other_rows
    from
        tagged_kept_scores({{ pass: tag, trim, layers, all_layers }}) as kept
    where uses_kept_scores('ranking', proximity_ignore, control_depth, score_type, trim)
    union all
    select
        scores.model,
        scores.rollout_id,
        scores.layer,
        scores.head,
        false as is_kept,
        scores.n_sentences,
        scores.n_va,
        scores.is_target,
        scores.vertical_score,
        null::double as column_sum,
        null::double as row_sum,
        scores.sum_from_target_rows,
        scores.sum_from_other_rows
    from
        column_scores(
            unscored_only := uses_kept_scores(
                'ranking', proximity_ignore, control_depth, score_type, trim
            ), {{ pass: tag, @metric }}
        ) as scores
),

per_head as (
    select
        columns.model,
        columns.rollout_id,
        columns.layer,
        columns.head,
        bool_and(columns.is_kept) as is_kept,
        any_value(columns.n_sentences) as n_sentences,
        any_value(columns.n_va) as n_va,
        avg(columns.vertical_score) filter (where columns.is_target) as mean_va_vert,
        avg(columns.vertical_score) filter (where not columns.is_target) as mean_nonva_vert,
        -- kept columns
        coalesce(sum(columns.column_sum) filter (where columns.is_target), 0) as target_column_sum,
        coalesce(sum(columns.row_sum) filter (where columns.is_target), 0) as target_row_sum,
        sum(columns.column_sum) as total_sum,
        -- scored columns
        sum(columns.sum_from_other_rows) filter (where columns.is_target) as computed_in_va,
        sum(columns.sum_from_other_rows) filter (where not columns.is_target) as computed_in_nonva,
        sum(columns.sum_from_target_rows) filter (where not columns.is_target) as computed_out_va,
        sum(columns.sum_from_target_rows) filter (where columns.is_target) as computed_va_to_va
    from columns
    group by columns.model, columns.rollout_id, columns.layer, columns.head
),

-- the four block sums: of the scored columns as they are; of the kept ones from the
-- target x target sum TT (kept_tag_blocks)
heads as (
    select
        per_head.*,
        coalesce(blocks.sum_va_to_va, 0) as kept_va_to_va,
        case
            when per_head.is_kept then per_head.target_column_sum - kept_va_to_va
            else per_head.computed_in_va
        end as sum_in_va,
        case
            when per_head.is_kept
                then per_head.total_sum - per_head.target_column_sum - per_head.target_row_sum
                + kept_va_to_va
            else per_head.computed_in_nonva
        end as sum_in_nonva,
        case
            when per_head.is_kept then per_head.target_row_sum - kept_va_to_va
            else per_head.computed_out_va
        end as sum_out_va,
        case when per_head.is_kept then kept_va_to_va else per_head.computed_va_to_va end
            as sum_va_to_va
    from per_head
    left join tagged_kept_blocks({{ pass: tag, layers, all_layers }}) as blocks
        using (model, rollout_id, layer, head)
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
