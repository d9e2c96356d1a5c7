-- Per (tag, rollout) with a defined ΔVA (0 < t < n_scored): the counts every statistic
-- reads instead of recounting (docs/STATISTICS.md §1-2). With t_s targets among the n_s
-- scored columns of stratum s, the null's distinct labellings number
-- L = Π_s C(n_s, t_s) (null 'uniform': C(n_scored, t)). Under null 'position' with exact,
-- when L <= permutations every labelling is enumerated once (is_exact; n_draws = L, the
-- p-value is exact and at least 1 / L); else K = permutations draws are sampled with
-- replacement (n_draws = K, p at least 1 / (1 + K)). Null 'uniform' always samples.
-- Parameters: tag, all_tags, permutations, null_model, exact, proximity_ignore, trim,
-- only_rollouts.
--- tag: target tag
--- rollout_id: rollout
--- problem_id: the rollout's problem (rollouts.problem_id)
--- n_scored: scored columns (defined v_c) of the rollout
--- n_target: target columns among the scored ones (t)
--- n_strata: strata of the null in the rollout
--- n_labellings: distinct labellings under the null (Π_s C(n_s, t_s))
--- is_exact: every labelling is enumerated (exact p-value)
--- n_draws: labellings the p-value counts over: L when exact, else K
--- sums_targets: the permutations sum the targets (t <= n_scored - t), else the others
--- stratum_targets: map from stratum to its number of target columns (t_s)
create or replace macro labelling_counts(
    {{ params: tag, all_tags, permutations, null_model, exact, proximity_ignore, trim, only_rollouts }}
) as table
with labels as (
    select *
    from
        scored_labels(
            {{ pass: tag, all_tags, null_model, proximity_ignore, trim, only_rollouts }}
        )
),

strata as (
    select
        labels.tag,
        labels.rollout_id,
        labels.stratum,
        any_value(labels.problem_id) as problem_id,
        count(*) as n_stratum,
        count(*) filter (where labels.is_target) as n_target_stratum
    from labels
    group by labels.tag, labels.rollout_id, labels.stratum
),

per_rollout as (
    select
        strata.tag,
        strata.rollout_id,
        any_value(strata.problem_id) as problem_id,
        sum(strata.n_stratum)::integer as n_scored,
        sum(strata.n_target_stratum)::integer as n_target,
        count(*)::integer as n_strata,
        round(exp(sum(log_binomial(strata.n_stratum, strata.n_target_stratum)))) as n_labellings
    from strata
    group by strata.tag, strata.rollout_id
    having sum(strata.n_target_stratum) > 0 and sum(strata.n_target_stratum) < sum(strata.n_stratum)
),

-- exact enumeration (null 'position' only: 'uniform' keeps the earlier sampled test)
decided as (
    select
        per_rollout.*,
        null_model = 'position' and exact and per_rollout.n_labellings <= permutations as is_exact,
        map_from_entries(list((strata.stratum, strata.n_target_stratum))) as stratum_targets
    from per_rollout
    inner join strata using (tag, rollout_id)
    group by all
)

select
    decided.tag,
    decided.rollout_id,
    decided.problem_id,
    decided.n_scored,
    decided.n_target,
    decided.n_strata,
    decided.n_labellings,
    decided.is_exact,
    (case when decided.is_exact then decided.n_labellings else checked_permutations(permutations) end)::integer
        as n_draws,
    decided.n_target <= decided.n_scored - decided.n_target as sums_targets,
    decided.stratum_targets
from decided;

create or replace view labelling_counts as
select * from labelling_counts();
