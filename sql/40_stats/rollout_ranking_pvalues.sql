-- The rollout ranking (rollout_ranking, METRICS.md §7) with permutation p-values
-- (docs/STATISTICS.md §4-5): per layer, the family-wise p-value of the layer's best head
-- (as selected_head_pvalues), and for the rollout, the p-value of its distinctiveness
-- score S = Σ_layers max_h |ΔVA(h)| against the permutation distribution of S (the same
-- permutation k relabels every layer and head of the rollout):
-- p_value_score = (1 + #{k >= 1 : S_k >= S_0 - 1e-12}) / (1 + K).
-- One tag (the ranking's); rollouts without a defined ΔVA keep NULL p-values.
-- Parameters: tag, permutations, seed, and those of rollout_ranking (same defaults:
-- the notebook's setting, representative layers).
--- model: model name
--- rank: 1 = most distinctive (as rollout_ranking)
--- rollout_id: rollout
--- rollout_name: the rollout directory's own name
--- distinctiveness_score: S, sum over layers of |ΔVA| of the best head
--- p_value_score: permutation p-value of S (is this rollout's S larger than chance?)
--- n_sentences: n, analysed sentences (after trim)
--- n_va: target sentences among the analysed ones
--- va_rate: n_va / max(1, n_sentences) (analysed)
--- n_sentences_original: N, sentences before trim
--- n_va_original: target sentences among all N (before trim)
--- layers: the layers scored, ascending
--- heads: best head of each layer (aligned with layers)
--- delta_va_vert_by_layer: ΔVA of each layer's best head (aligned with layers)
--- lift_in_va_by_layer: lift_in_va of each layer's best head (aligned with layers)
--- p_value_fwer_by_layer: family-wise p-value of each layer's best head (aligned with layers)
--- permutations: K, the number of permutations drawn
create or replace macro rollout_ranking_pvalues(
    tag := 'verbalized_evaluation_awareness',
    permutations := 1000,
    seed := 0,
    proximity_ignore := 4,
    control_depth := true,
    score_type := 'mean',
    trim := true,
    layers := null,
    all_layers := false
) as table
with deltas as (
    select *
    from
        delta_va_permutations(
            tag := tag,
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

-- max over heads of |ΔVA| per layer and labelling (permutation 0 = observed)
layer_maxima as materialized (
    select
        deltas.model,
        deltas.rollout_id,
        deltas.layer,
        deltas.permutation,
        max(abs(deltas.delta_va_vert)) as max_abs_delta
    from deltas
    group by deltas.model, deltas.rollout_id, deltas.layer, deltas.permutation
),

layer_pvalues as (
    select
        observed.model,
        observed.rollout_id,
        observed.layer,
        (1 + count(permuted.permutation) filter (
            where permuted.max_abs_delta >= observed.max_abs_delta - 1e-12
        )) / (1 + permutations)::double as p_value_fwer
    from layer_maxima as observed
    left join layer_maxima as permuted
        on permuted.model = observed.model
        and permuted.rollout_id = observed.rollout_id
        and permuted.layer = observed.layer
        and permuted.permutation > 0
    where observed.permutation = 0
    group by observed.model, observed.rollout_id, observed.layer
),

scores as materialized (
    select
        layer_maxima.model,
        layer_maxima.rollout_id,
        layer_maxima.permutation,
        sum(layer_maxima.max_abs_delta) as score
    from layer_maxima
    group by layer_maxima.model, layer_maxima.rollout_id, layer_maxima.permutation
),

score_pvalues as (
    select
        observed.model,
        observed.rollout_id,
        (1 + count(permuted.permutation) filter (
            where permuted.score >= observed.score - 1e-12
        )) / (1 + permutations)::double as p_value_score
    from scores as observed
    left join scores as permuted
        on permuted.model = observed.model
        and permuted.rollout_id = observed.rollout_id
        and permuted.permutation > 0
    where observed.permutation = 0
    group by observed.model, observed.rollout_id
),

ranking as (
    select *
    from
        rollout_ranking(
            tag := tag,
            proximity_ignore := proximity_ignore,
            control_depth := control_depth,
            score_type := score_type,
            trim := trim,
            layers := layers,
            all_layers := all_layers
        )
),

aligned as (
    select
        ranking.model,
        ranking.rollout_id,
        list(layer_pvalues.p_value_fwer order by scored.position) as p_value_fwer_by_layer
    from ranking
    cross join unnest(ranking.layers) with ordinality as scored(layer, position)
    left join layer_pvalues
        on layer_pvalues.model = ranking.model
        and layer_pvalues.rollout_id = ranking.rollout_id
        and layer_pvalues.layer = scored.layer
    group by ranking.model, ranking.rollout_id
)

select
    ranking.model,
    ranking.rank,
    ranking.rollout_id,
    ranking.rollout_name,
    ranking.distinctiveness_score,
    score_pvalues.p_value_score,
    ranking.n_sentences,
    ranking.n_va,
    ranking.va_rate,
    ranking.n_sentences_original,
    ranking.n_va_original,
    ranking.layers,
    ranking.heads,
    ranking.delta_va_vert_by_layer,
    ranking.lift_in_va_by_layer,
    aligned.p_value_fwer_by_layer,
    permutations::integer as permutations
from ranking
left join score_pvalues
    on score_pvalues.model = ranking.model
    and score_pvalues.rollout_id = ranking.rollout_id
left join aligned
    on aligned.model = ranking.model
    and aligned.rollout_id = ranking.rollout_id
order by ranking.model, ranking.rank;

create or replace view rollout_ranking_pvalues as
select * from rollout_ranking_pvalues();
