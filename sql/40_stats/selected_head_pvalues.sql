-- The notebook's best head of each (tag, model, rollout, layer) (METRICS.md §7: largest
-- |ΔVA|, ties to the lowest head) with two permutation p-values (docs/STATISTICS.md §4):
-- p_value_uncorrected, that head's own p-value (as head_pvalues), which ignores that it
-- was picked as the largest of n_heads; and p_value_fwer, the family-wise p-value of the
-- selection: the observed max over heads of |ΔVA| against the permutation distribution of
-- that max, (1 + #{k >= 1 : max_h |ΔVA_k(h)| >= max_h |ΔVA_0(h)| - 1e-12}) / (1 + K).
-- The same permutation k relabels every head of the rollout (labels are per rollout).
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
--- permutations: K, the number of permutations drawn
--- p_value_uncorrected: the best head's own two-sided p-value (overstates significance)
--- p_value_fwer: family-wise p-value of the selected head (max |ΔVA| over heads)
create or replace macro selected_head_pvalues(
    tag := 'verbalized_evaluation_awareness',
    all_tags := false,
    permutations := 1000,
    seed := 0,
    proximity_ignore := 4,
    control_depth := true,
    score_type := 'mean',
    trim := true,
    layers := null,
    all_layers := false
) as table
with deltas as materialized (
    select *
    from
        delta_va_permutations(
            tag := tag,
            all_tags := all_tags,
            permutations := permutations,
            seed := seed,
            proximity_ignore := proximity_ignore,
            control_depth := control_depth,
            score_type := score_type,
            trim := trim,
            layers := layers,
            all_layers := all_layers
        )
),

-- the observed best head (§7) of each layer
ranked as (
    select
        deltas.*,
        row_number() over (
            partition by deltas.tag, deltas.model, deltas.rollout_id, deltas.layer
            order by round(abs(deltas.delta_va_vert), 12) desc, deltas.head
        ) as head_order,
        count(*) over (
            partition by deltas.tag, deltas.model, deltas.rollout_id, deltas.layer
        ) as n_heads
    from deltas
    where deltas.permutation = 0
),

best as (
    select ranked.*
    from ranked
    where ranked.head_order = 1
),

-- the max over heads of |ΔVA| under each permutation
permuted_maxima as (
    select
        deltas.tag,
        deltas.model,
        deltas.rollout_id,
        deltas.layer,
        deltas.permutation,
        max(abs(deltas.delta_va_vert)) as max_abs_delta
    from deltas
    where deltas.permutation > 0
    group by deltas.tag, deltas.model, deltas.rollout_id, deltas.layer, deltas.permutation
),

fwer_counts as (
    select
        best.tag,
        best.model,
        best.rollout_id,
        best.layer,
        count(permuted_maxima.permutation) as n_as_extreme
    from best
    inner join permuted_maxima
        on permuted_maxima.tag = best.tag
        and permuted_maxima.model = best.model
        and permuted_maxima.rollout_id = best.rollout_id
        and permuted_maxima.layer = best.layer
    where permuted_maxima.max_abs_delta >= abs(best.delta_va_vert) - 1e-12
    group by best.tag, best.model, best.rollout_id, best.layer
),

head_counts as (
    select
        best.tag,
        best.model,
        best.rollout_id,
        best.layer,
        count(deltas.permutation) as n_as_extreme
    from best
    inner join deltas
        on deltas.tag = best.tag
        and deltas.model = best.model
        and deltas.rollout_id = best.rollout_id
        and deltas.layer = best.layer
        and deltas.head = best.head
    where
        deltas.permutation > 0
        and abs(deltas.delta_va_vert) >= abs(best.delta_va_vert) - 1e-12
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
    best.n_heads,
    permutations::integer as permutations,
    (1 + coalesce(head_counts.n_as_extreme, 0)) / (1 + permutations)::double as p_value_uncorrected,
    (1 + coalesce(fwer_counts.n_as_extreme, 0)) / (1 + permutations)::double as p_value_fwer
from best
left join head_counts
    on head_counts.tag = best.tag
    and head_counts.model = best.model
    and head_counts.rollout_id = best.rollout_id
    and head_counts.layer = best.layer
left join fwer_counts
    on fwer_counts.tag = best.tag
    and fwer_counts.model = best.model
    and fwer_counts.rollout_id = best.rollout_id
    and fwer_counts.layer = best.layer;

create or replace view selected_head_pvalues as
select * from selected_head_pvalues();
