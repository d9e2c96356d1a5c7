-- Rollout ranking by distinctiveness (METRICS.md §7): S = Σ over the chosen layers of
-- |ΔVA| of the layer's best head (best_heads). Rank 1 = most distinctive, ties by
-- rollout_id (S compared rounded to 12 decimals); a rollout with no defined ΔVA in any
-- layer has a NULL score and ranks last.
-- Counts: n_sentences, n_va, va_rate are analysed (after trim, §4); *_original are the
-- counts before trim (N and the targets among all N sentences).
-- Parameters: as head_stats.
--- model: model name
--- rank: 1 = most distinctive (per model); ties by rollout_id; NULL scores last
--- rollout_id: rollout
--- rollout_name: the rollout directory's own name
--- distinctiveness_score: S, sum over layers of |ΔVA| of the best head; NULL if no layer has one
--- n_sentences: n, analysed sentences (after trim)
--- n_va: target sentences among the analysed ones
--- va_rate: n_va / max(1, n_sentences) (analysed)
--- n_sentences_original: N, sentences before trim
--- n_va_original: target sentences among all N (before trim)
--- layers: the layers scored, ascending
--- heads: best head of each layer (aligned with layers; NULL where no head has a defined ΔVA)
--- delta_va_vert_by_layer: ΔVA of each layer's best head (aligned with layers)
--- lift_in_va_by_layer: lift_in_va of each layer's best head (aligned with layers)
create or replace macro rollout_ranking({{ params: tag, @metric }}) as table
with per_rollout as (
    select
        best.model,
        best.rollout_id,
        sum(best.abs_delta_va_vert) as distinctiveness_score,
        any_value(best.n_sentences) as n_sentences,
        any_value(best.n_va) as n_va,
        any_value(best.va_rate) as va_rate,
        list(best.layer::integer order by best.layer) as layers,
        list(best.head::integer order by best.layer) as heads,
        list(best.delta_va_vert order by best.layer) as delta_va_vert_by_layer,
        list(best.lift_in_va order by best.layer) as lift_in_va_by_layer
    from best_heads({{ pass: tag, @metric }}) as best
    group by best.model, best.rollout_id
),

ranked as (
    select
        per_rollout.*,
        row_number() over (
            partition by per_rollout.model
            order by
                round(per_rollout.distinctiveness_score, 12) desc nulls last,
                per_rollout.rollout_id
        ) as rollout_rank
    from per_rollout
)

select
    ranked.model,
    ranked.rollout_rank as rank,
    ranked.rollout_id,
    rollouts.rollout_name,
    ranked.distinctiveness_score,
    -- analysed counts (after trim, §4)
    ranked.n_sentences,
    ranked.n_va,
    ranked.va_rate,
    -- original counts (before trim)
    rollouts.n_sentences_original,
    rollouts.n_va_original,
    -- per-layer best heads (§7)
    ranked.layers,
    ranked.heads,
    ranked.delta_va_vert_by_layer,
    ranked.lift_in_va_by_layer
from ranked
inner join analysed_rollouts({{ pass: tag, trim }}) as rollouts using (rollout_id)
order by ranked.model, ranked.rollout_rank;

create or replace view rollout_ranking as
select * from rollout_ranking();
