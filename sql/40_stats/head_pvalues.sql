-- Permutation p-value of ΔVA per (tag, model, rollout, layer, head) (docs/STATISTICS.md §3):
-- two-sided, p = (1 + #{k >= 1 : |ΔVA_k| >= |ΔVA_0| - 1e-12}) / (1 + K), where ΔVA_0 is
-- the observed ΔVA (METRICS.md §6) and ΔVA_k its value under permutation k of the
-- target labels among the scored columns (delta_va_permutations). The 1e-12 slack makes
-- permutations that tie with the observed value (float noise) count as extreme.
-- Only heads with a defined ΔVA have a row. Uncorrected for the choice among heads: for
-- the notebook's best head use best_head_pvalues.
-- Parameters: as delta_va_permutations (tag, all_tags, permutations, seed, proximity_ignore,
-- control_depth, score_type, trim, layers, all_layers).
--- tag: target tag
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- delta_va_vert: observed ΔVA (as head_stats)
--- n_scored: scored columns (defined v_c) of the rollout
--- n_target: target columns among the scored ones
--- permutations: K, the number of permutations drawn
--- n_as_extreme: permutations with |ΔVA_k| >= |ΔVA_0| (within 1e-12)
--- p_value: (1 + n_as_extreme) / (1 + K), two-sided
create or replace macro head_pvalues(
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

observed as (
    select deltas.*
    from deltas
    where deltas.permutation = 0
),

extremes as (
    select
        deltas.tag,
        deltas.model,
        deltas.rollout_id,
        deltas.layer,
        deltas.head,
        count(*) as n_as_extreme
    from deltas
    inner join observed
        on observed.tag = deltas.tag
        and observed.model = deltas.model
        and observed.rollout_id = deltas.rollout_id
        and observed.layer = deltas.layer
        and observed.head = deltas.head
    where
        deltas.permutation > 0
        and abs(deltas.delta_va_vert) >= abs(observed.delta_va_vert) - 1e-12
    group by deltas.tag, deltas.model, deltas.rollout_id, deltas.layer, deltas.head
),

counts as (
    select
        labels.tag,
        labels.rollout_id,
        count(*) as n_scored,
        count(*) filter (where labels.is_target) as n_target
    from analysed_tags(tag := tag, all_tags := all_tags, trim := trim) as labels
    where labels.r <= labels.n_sentences - 1 - proximity_ignore
    group by labels.tag, labels.rollout_id
)

select
    observed.tag,
    observed.model,
    observed.rollout_id,
    observed.layer,
    observed.head,
    observed.delta_va_vert,
    counts.n_scored,
    counts.n_target,
    permutations::integer as permutations,
    coalesce(extremes.n_as_extreme, 0) as n_as_extreme,
    (1 + coalesce(extremes.n_as_extreme, 0)) / (1 + permutations)::double as p_value
from observed
inner join counts
    on counts.tag = observed.tag
    and counts.rollout_id = observed.rollout_id
left join extremes
    on extremes.tag = observed.tag
    and extremes.model = observed.model
    and extremes.rollout_id = observed.rollout_id
    and extremes.layer = observed.layer
    and extremes.head = observed.head;

create or replace view head_pvalues as
select * from head_pvalues();
