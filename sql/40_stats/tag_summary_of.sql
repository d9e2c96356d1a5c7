-- The combination step of tag_summary (docs/STATISTICS.md §7) over two relations named by
-- selections (selected_head_pvalues' columns: the per-rollout best heads) and consistency
-- (head_consistency's columns): per (tag, model) the per-rollout shares and the most
-- consistent head, exactly as tag_summary (which is this macro over those two macros).
-- The report passes the per-rollout selections it keeps and head_consistency_of over the
-- draws it keeps, so a changed rollout does not recompute the others.
-- Parameters: selections, consistency (relation names; default the views), permutations
-- (the K of those rows, reported), alpha.
--- tag: target tag
--- model: model name
--- n_rollouts: rollouts where the tag's ΔVA is defined (0 < targets < scored columns)
--- mean_n_target: mean number of scored target columns in those rollouts
--- n_selections: (rollout, layer) pairs with a best head
--- mean_best_abs_delta_va: mean over them of the best head's |ΔVA| (the notebook's selection)
--- share_uncorrected_significant: share of them with p_value_uncorrected <= alpha
--- share_fwer_significant: share of them with p_value_fwer <= alpha (expected about alpha by chance)
--- median_p_value_fwer: median over them of p_value_fwer
--- top_layer: layer of the most consistent head (smallest p_value_fwer, then largest |t|, layer, head)
--- top_head: head of the most consistent head
--- top_mean_delta_va_vert: its mean ΔVA across rollouts
--- top_t_statistic: its t statistic
--- top_share_same_sign: its share of rollouts with the sign of the mean
--- top_p_value: its sign-flip p-value (uncorrected)
--- top_p_value_fwer: its family-wise sign-flip p-value (max-T over all heads scored)
--- n_heads_fwer_significant: heads with p_value_fwer <= alpha
--- permutations: K, permutations drawn (label permutations and sign flips alike)
--- top_q_value_fwer: Benjamini-Hochberg q-value of top_p_value_fwer over the model's tags
create or replace macro tag_summary_of({{ params: selections, consistency, permutations, alpha }}) as table
with selections as (
    select * from query_table(selections)
),

consistency as (
    select * from query_table(consistency)
),

per_rollout as (
    select
        selections.tag,
        selections.model,
        count(distinct selections.rollout_id) as n_rollouts,
        count(*) as n_selections,
        avg(selections.abs_delta_va_vert) as mean_best_abs_delta_va,
        avg((selections.p_value_uncorrected <= alpha)::integer) as share_uncorrected_significant,
        avg((selections.p_value_fwer <= alpha)::integer) as share_fwer_significant,
        median(selections.p_value_fwer) as median_p_value_fwer
    from selections
    group by selections.tag, selections.model
),

-- targets per rollout, as counted once by labelling_counts (through selected_head_pvalues)
target_counts as (
    select
        rollout_targets.tag,
        rollout_targets.model,
        avg(rollout_targets.n_target) as mean_n_target
    from (select distinct selections.tag, selections.model, selections.rollout_id, selections.n_target from selections)
        as rollout_targets
    group by rollout_targets.tag, rollout_targets.model
),

ranked_heads as (
    select
        consistency.*,
        row_number() over (
            partition by consistency.tag, consistency.model
            order by
                consistency.p_value_fwer nulls last,
                abs(consistency.t_statistic) desc nulls last,
                consistency.layer,
                consistency.head
        ) as head_order,
        count(*) filter (where consistency.p_value_fwer <= alpha) over (
            partition by consistency.tag, consistency.model
        ) as n_heads_fwer_significant
    from consistency
),

top_heads as (
    select
        ranked_heads.*,
        bh_rank(ranked_heads.p_value_fwer, ranked_heads.model) as p_rank,
        count(*) over (partition by ranked_heads.model) as family_size
    from ranked_heads
    where ranked_heads.head_order = 1 and ranked_heads.p_value_fwer is not null
),

top_qvalues as (
    select
        top_heads.*,
        bh_q_value(top_heads.p_value_fwer, top_heads.p_rank, top_heads.family_size, top_heads.model)
            as q_value_fwer
    from top_heads
),

top_any as (
    select ranked_heads.*
    from ranked_heads
    where ranked_heads.head_order = 1
)

select
    per_rollout.tag,
    per_rollout.model,
    per_rollout.n_rollouts,
    target_counts.mean_n_target,
    per_rollout.n_selections,
    per_rollout.mean_best_abs_delta_va,
    per_rollout.share_uncorrected_significant,
    per_rollout.share_fwer_significant,
    per_rollout.median_p_value_fwer,
    top_any.layer as top_layer,
    top_any.head as top_head,
    top_any.mean_delta_va_vert as top_mean_delta_va_vert,
    top_any.t_statistic as top_t_statistic,
    top_any.share_same_sign as top_share_same_sign,
    top_any.p_value as top_p_value,
    top_any.p_value_fwer as top_p_value_fwer,
    top_any.n_heads_fwer_significant,
    permutations::integer as permutations,
    top_qvalues.q_value_fwer as top_q_value_fwer
from per_rollout
left join target_counts using (tag, model)
left join top_any using (tag, model)
left join top_qvalues using (tag, model)
order by per_rollout.model, per_rollout.tag;

create or replace view tag_summary_of as
select * from tag_summary_of();
