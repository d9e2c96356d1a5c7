-- The per-rollout input of head_consistency (docs/STATISTICS.md §6): per (tag, model,
-- rollout, layer, head) the observed ΔVA (permutation 0) and the excess ΔVA of each sampled
-- labelling k = 0..K of the null (delta_va_permutations with exact := false, so draw k is
-- an independent draw in every rollout and the same draw for every head), with the
-- rollout's cluster (its problem, or itself). Under null_model 'uniform' only permutation 0
-- (the sign flips are drawn across rollouts, in head_consistency_of). A rollout's rows
-- depend on that rollout and the parameters alone, so they can be kept per rollout (the
-- report does) and combined later by head_consistency_of.
-- Parameters: as head_consistency, and only_rollouts (NULL: every rollout; a list of ids:
-- those rollouts' rows alone, what the report keeps per rollout).
--- tag: target tag
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- permutation: 0 = the observed labels, 1..K = the null's draws
--- delta_va_vert: ΔVA under the observed labels (NULL for permutation > 0)
--- excess_delta_va: excess ΔVA of that labelling (delta_va_permutations)
--- cluster_id: the rollout's problem (rollouts.problem_id), or the rollout when it has none
create or replace macro consistency_draws(
    {{ params: tag, all_tags, permutations, seed, null_model, @metric, only_rollouts }}
) as table
select
    deltas.*,
    coalesce(counts.problem_id, deltas.rollout_id) as cluster_id
from
    delta_va_permutations(
        permutations := case when null_model = 'uniform' then 0 else permutations end,
        exact := false, {{ pass: tag, all_tags, seed, null_model, @metric, only_rollouts }}
    ) as deltas
inner join
    labelling_counts(
        permutations := 0, {{ pass: tag, all_tags, null_model, proximity_ignore, trim, only_rollouts }}
    ) as counts using (tag, rollout_id);

create or replace view consistency_draws as
select * from consistency_draws();
