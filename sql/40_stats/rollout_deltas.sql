-- The observed ΔVA of every head in every rollout (METRICS.md §6, as head_stats) with the
-- rollout's cluster for resampling (docs/STATISTICS.md §8): its problem
-- (rollouts.problem_id) when the tag's rollouts come from at least two problems, else the
-- rollout itself (resamples of one problem: the rollouts are the only units left).
-- Parameters: tag, all_tags, proximity_ignore, control_depth, score_type, trim, layers,
-- all_layers.
--- tag: target tag
--- model: model name
--- rollout_id: rollout
--- cluster_id: resampling unit: problem_id, or rollout_id when the tag has one problem
--- layer: layer index
--- head: query head index
--- delta_va_vert: observed ΔVA
create or replace macro rollout_deltas({{ params: tag, all_tags, @metric }}) as table
with counts as (
    select
        counts.*,
        count(distinct counts.problem_id) over (partition by counts.tag) as n_problems
    from
        labelling_counts(
            permutations := 0, null_model := 'uniform',
            {{ pass: tag, all_tags, proximity_ignore, trim }}
        ) as counts
)

select
    deltas.tag,
    deltas.model,
    deltas.rollout_id,
    case when counts.n_problems >= 2 then coalesce(counts.problem_id, deltas.rollout_id) else deltas.rollout_id end
        as cluster_id,
    deltas.layer,
    deltas.head,
    deltas.delta_va_vert
from
    delta_va_permutations(
        permutations := 0, null_model := 'uniform', {{ pass: tag, all_tags, @metric }}
    ) as deltas
inner join counts using (tag, rollout_id);

create or replace view rollout_deltas as
select * from rollout_deltas();
