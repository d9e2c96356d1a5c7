-- The rollout ranking (rollout_ranking, METRICS.md §7) with permutation p-values
-- (docs/STATISTICS.md §4-5): per layer, the family-wise p-value of the layer's best head
-- (selected_head_pvalues), and for the rollout, the p-value of S = Σ_layers max_h
-- |excess ΔVA(h)| (layer_maxima; for null 'uniform' the distinctiveness score) against its
-- null distribution (the same labelling k relabels every layer and head of the rollout):
-- p_value_score = permutation_p_value(#{k >= 1 : S_k >= S_0 - 1e-12}, n_draws, is_exact);
-- q_value_score: Benjamini-Hochberg over the ranked rollouts of the model (§9).
-- One tag (the ranking's); rollouts without a defined ΔVA keep NULL p-values.
-- Parameters: tag, permutations, seed, null_model, exact, and those of rollout_ranking (same defaults:
-- the notebook's setting, representative layers); only_rollouts (NULL: every rollout; a list of
-- ids: those rollouts' rows alone, their p-values computed for them only, rank as in the whole
-- ranking; q_value_score is then over those rows: take it from an unscoped call).
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
--- permutations: K, the number of permutations asked for
--- n_labellings: distinct labellings of the rollout under the null
--- q_value_score: Benjamini-Hochberg q-value of p_value_score over the model's rollouts
create or replace macro rollout_ranking_pvalues({{ params: tag, @null, @metric, only_rollouts }}) as table
with scores as materialized (
    select
        maxima.model,
        maxima.rollout_id,
        maxima.permutation,
        sum(maxima.max_abs_excess) as score
    from
        layer_maxima({{ pass: tag, @null, @metric, only_rollouts }}) as maxima
    group by maxima.model, maxima.rollout_id, maxima.permutation
),

counts as (
    select *
    from
        labelling_counts(
            {{ pass: tag, permutations, null_model, exact, proximity_ignore, trim, only_rollouts }}
        )
),

score_pvalues as (
    select
        observed.model,
        observed.rollout_id,
        any_value(counts.n_labellings) as n_labellings,
        permutation_p_value(
            count(permuted.permutation) filter (where is_as_extreme(permuted.score, observed.score)),
            any_value(counts.n_draws),
            any_value(counts.is_exact)
        ) as p_value_score
    from scores as observed
    inner join counts using (rollout_id)
    left join scores as permuted
        on permuted.model = observed.model
        and permuted.rollout_id = observed.rollout_id
        and permuted.permutation > 0
    where observed.permutation = 0
    group by observed.model, observed.rollout_id
),

ranked_scores as (
    select
        score_pvalues.*,
        bh_rank(score_pvalues.p_value_score, score_pvalues.model) as p_rank,
        count(*) over (partition by score_pvalues.model) as family_size
    from score_pvalues
),

score_qvalues as (
    select
        ranked_scores.*,
        bh_q_value(
            ranked_scores.p_value_score, ranked_scores.p_rank, ranked_scores.family_size,
            ranked_scores.model
        ) as q_value_score
    from ranked_scores
),

ranking as (
    select *
    from
        rollout_ranking({{ pass: tag, @metric }})
    where is_listed(rollout_id, only_rollouts)
),

selected as (
    select *
    from
        selected_head_pvalues({{ pass: tag, @null, @metric, only_rollouts }})
),

aligned as (
    select
        ranking.model,
        ranking.rollout_id,
        list(selected.p_value_fwer order by scored.position) as p_value_fwer_by_layer
    from ranking
    cross join unnest(ranking.layers) with ordinality as scored(layer, position)
    left join selected
        on selected.model = ranking.model
        and selected.rollout_id = ranking.rollout_id
        and selected.layer = scored.layer
    group by ranking.model, ranking.rollout_id
)

select
    ranking.model,
    ranking.rank,
    ranking.rollout_id,
    ranking.rollout_name,
    ranking.distinctiveness_score,
    score_qvalues.p_value_score,
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
    permutations::integer as permutations,
    score_qvalues.n_labellings,
    score_qvalues.q_value_score
from ranking
left join score_qvalues using (model, rollout_id)
left join aligned using (model, rollout_id)
order by ranking.model, ranking.rank;

create or replace view rollout_ranking_pvalues as
select * from rollout_ranking_pvalues();
