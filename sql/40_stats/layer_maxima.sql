-- The max over a layer's heads of |excess ΔVA| (delta_va_permutations) per (tag, model,
-- rollout, layer, labelling): the statistic of the family-wise p-values (docs/STATISTICS.md
-- §4; the same labelling k relabels every head, so the max has a valid null distribution)
-- and, summed over layers, of the distinctiveness score's p-value (§5).
-- Parameters: as delta_va_permutations.
--- tag: target tag
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- permutation: 0 = the observed labels, 1..n_draws = the null's labellings
--- max_abs_excess: max over the layer's heads of |excess_delta_va|
--- n_heads: heads with a defined ΔVA in the layer
create or replace macro layer_maxima({{ params: tag, all_tags, @null, @metric, only_rollouts }}) as table
select
    deltas.tag,
    deltas.model,
    deltas.rollout_id,
    deltas.layer,
    deltas.permutation,
    max(abs(deltas.excess_delta_va)) as max_abs_excess,
    count(*) as n_heads
from
    delta_va_permutations({{ pass: tag, all_tags, @null, @metric, only_rollouts }}) as deltas
group by deltas.tag, deltas.model, deltas.rollout_id, deltas.layer, deltas.permutation;

create or replace view layer_maxima as
select * from layer_maxima();
