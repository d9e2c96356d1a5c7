-- The notebook's best head of each (tag, model, rollout, layer) (METRICS.md §7: largest
-- |ΔVA|, ties to the lowest head; best_head_key) with two permutation p-values
-- (docs/STATISTICS.md §4): p_value_uncorrected, that head's own p-value (head_pvalues),
-- which ignores that it was picked as the largest of n_heads; and p_value_fwer, the
-- family-wise p-value of the selection: the head's |excess ΔVA| against the null
-- distribution of the max over the layer's heads (layer_maxima),
-- permutation_p_value(#{k >= 1 : max_h |excess_k(h)| >= |excess_0(h*)| - 1e-12}, ...).
-- The same labelling k relabels every head of the rollout (labels are per rollout).
-- Layers where no head has a defined ΔVA have no row.
-- Parameters: as delta_va_permutations.
--- tag: target tag
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: the best head (largest |ΔVA|, ties to the lowest head)
--- delta_va_vert: observed ΔVA of the best head
--- abs_delta_va_vert: |ΔVA| of the best head, the max over the layer's heads
--- n_heads: heads with a defined ΔVA in the layer (the size of the family)
--- permutations: K, the number of permutations asked for
--- p_value_uncorrected: the best head's own two-sided p-value (overstates significance)
--- p_value_fwer: family-wise p-value of the selected head (max |excess ΔVA| over heads)
--- n_target: target columns among the rollout's scored ones
--- n_labellings: distinct labellings under the null
create or replace macro selected_head_pvalues({{ params: tag, all_tags, @null, @metric, only_rollouts }}) as table
with best as (
    select heads.*
    from
        head_pvalues({{ pass: tag, all_tags, @null, @metric, only_rollouts }}) as heads
    qualify row_number() over (
        partition by heads.tag, heads.model, heads.rollout_id, heads.layer
        order by best_head_key(heads.delta_va_vert) desc, heads.head
    ) = 1
),

maxima as (
    select *
    from
        layer_maxima({{ pass: tag, all_tags, @null, @metric, only_rollouts }})
),

fwer_counts as (
    select
        best.tag,
        best.model,
        best.rollout_id,
        best.layer,
        any_value(maxima.n_heads) filter (where maxima.permutation = 0) as n_heads,
        count(*) filter (
            where maxima.permutation > 0 and is_as_extreme(maxima.max_abs_excess, abs(best.excess_delta_va))
        ) as n_as_extreme
    from best
    inner join maxima using (tag, model, rollout_id, layer)
    group by best.tag, best.model, best.rollout_id, best.layer
)

select
    best.tag,
    best.model,
    best.rollout_id,
    best.layer,
    best.head,
    best.delta_va_vert,
    abs(best.delta_va_vert) as abs_delta_va_vert,
    fwer_counts.n_heads,
    permutations::integer as permutations,
    best.p_value as p_value_uncorrected,
    permutation_p_value(
        fwer_counts.n_as_extreme,
        best.n_draws,
        best.is_exact
    ) as p_value_fwer,
    best.n_target,
    best.n_labellings
from best
inner join fwer_counts using (tag, model, rollout_id, layer);

create or replace view selected_head_pvalues as
select * from selected_head_pvalues();
