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
create or replace macro layer_maxima(
    tag := 'verbalized_evaluation_awareness',
    all_tags := false,
    permutations := 1000,
    seed := 0,
    null_model := 'position',
    exact := true,
    proximity_ignore := 4,
    control_depth := true,
    score_type := 'mean',
    trim := true,
    layers := null,
    all_layers := false
) as table
select
    deltas.tag,
    deltas.model,
    deltas.rollout_id,
    deltas.layer,
    deltas.permutation,
    max(abs(deltas.excess_delta_va)) as max_abs_excess,
    count(*) as n_heads
from
    delta_va_permutations(
        tag := tag, all_tags := all_tags, permutations := permutations, seed := seed,
        null_model := null_model, exact := exact, proximity_ignore := proximity_ignore,
        control_depth := control_depth, score_type := score_type, trim := trim,
        layers := layers, all_layers := all_layers
    ) as deltas
group by deltas.tag, deltas.model, deltas.rollout_id, deltas.layer, deltas.permutation;

create or replace view layer_maxima as
select * from layer_maxima();
