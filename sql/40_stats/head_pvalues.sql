-- Permutation p-value of ΔVA per (tag, model, rollout, layer, head) (docs/STATISTICS.md §3):
-- two-sided, on the excess of ΔVA over its null mean (delta_va_permutations):
-- p = permutation_p_value(#{k >= 1 : |excess_k| >= |excess_0| - 1e-12}, n_draws, is_exact),
-- where k runs over the null's labellings (labelling_counts: sampled, or every labelling
-- when exact). Default null 'position': labels exchanged only within blocks of relative
-- position, scores adjusted for position and sentence length; 'uniform': among all scored
-- columns (the earlier test).
-- Only heads with a defined ΔVA have a row. Uncorrected for the choice among heads: for
-- the notebook's best head use selected_head_pvalues; q_value controls the false discovery
-- rate over the heads of the rollout (Benjamini-Hochberg, §9).
-- Parameters: as delta_va_permutations (tag, all_tags, permutations, seed, null_model,
-- exact, proximity_ignore, control_depth, score_type, trim, layers, all_layers,
-- only_rollouts).
--- tag: target tag
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- delta_va_vert: observed ΔVA (as head_stats)
--- n_scored: scored columns (defined v_c) of the rollout
--- n_target: target columns among the scored ones
--- permutations: K, the number of permutations asked for
--- n_as_extreme: labellings k >= 1 with |excess_k| >= |excess_0| (within 1e-12)
--- p_value: permutation_p_value(n_as_extreme, n_draws, is_exact), two-sided
--- excess_delta_va: observed ΔVA minus its mean under the null (0 shift for 'uniform')
--- n_labellings: distinct labellings under the null (Π_s C(n_s, t_s))
--- is_exact: every labelling was enumerated (p exact, at least 1 / n_labellings)
--- n_draws: labellings the p-value counts over (n_labellings when exact, else K)
--- q_value: Benjamini-Hochberg q-value over the heads of this tag, model and rollout
create or replace macro head_pvalues({{ params: tag, all_tags, @null, @metric, only_rollouts }}) as table
with deltas as materialized (
    select *
    from
        delta_va_permutations({{ pass: tag, all_tags, @null, @metric, only_rollouts }})
),

counts as (
    select *
    from
        labelling_counts(
            {{ pass: tag, all_tags, permutations, null_model, exact, proximity_ignore, trim, only_rollouts }}
        )
),

observed as (
    select deltas.*
    from deltas
    where deltas.permutation = 0
),

extremes as (
    select
        observed.tag,
        observed.model,
        observed.rollout_id,
        observed.layer,
        observed.head,
        count(*) as n_as_extreme
    from deltas
    inner join observed using (tag, model, rollout_id, layer, head)
    where
        deltas.permutation > 0
        and is_as_extreme(abs(deltas.excess_delta_va), abs(observed.excess_delta_va))
    group by all
),

tested as (
    select
        observed.*,
        counts.n_scored,
        counts.n_target,
        counts.n_labellings,
        counts.is_exact,
        counts.n_draws,
        coalesce(extremes.n_as_extreme, 0) as n_as_extreme,
        permutation_p_value(coalesce(extremes.n_as_extreme, 0), counts.n_draws, counts.is_exact) as p_value
    from observed
    inner join counts using (tag, rollout_id)
    left join extremes using (tag, model, rollout_id, layer, head)
),

ranked as (
    select
        tested.*,
        bh_rank(tested.p_value, [tested.tag, tested.model, tested.rollout_id]) as p_rank,
        count(*) over (partition by tested.tag, tested.model, tested.rollout_id) as family_size
    from tested
)

select
    ranked.tag,
    ranked.model,
    ranked.rollout_id,
    ranked.layer,
    ranked.head,
    ranked.delta_va_vert,
    ranked.n_scored,
    ranked.n_target,
    permutations::integer as permutations,
    ranked.n_as_extreme,
    ranked.p_value,
    ranked.excess_delta_va,
    ranked.n_labellings,
    ranked.is_exact,
    ranked.n_draws,
    bh_q_value(
        ranked.p_value, ranked.p_rank, ranked.family_size, [ranked.tag, ranked.model, ranked.rollout_id]
    ) as q_value
from ranked;

create or replace view head_pvalues as
select * from head_pvalues();
