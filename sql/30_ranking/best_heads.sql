-- Best head of each (model, rollout, layer) (METRICS.md §7): the head with the largest
-- |ΔVA|; heads with an undefined (NULL) ΔVA are never chosen; ties go to the lowest head
-- (|ΔVA| is compared rounded to 12 decimals, so float noise cannot break a tie).
-- The whole head_stats row of that one head is reported (never columns of several heads).
-- When no head of the layer has a defined ΔVA, the row is kept with head and every
-- head-level statistic NULL (the counts stay), so each stored (rollout, layer) appears.
-- Parameters: as head_stats.
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: the best head; NULL when no head has a defined ΔVA
--- abs_delta_va_vert: |ΔVA| of the best head
--- mean_va_vert: as head_stats, of the best head
--- mean_nonva_vert: as head_stats, of the best head
--- delta_va_vert: ΔVA of the best head
--- mean_in_va: as head_stats, of the best head
--- mean_in_nonva: as head_stats, of the best head
--- mean_out_va: as head_stats, of the best head
--- mean_va_to_va: as head_stats, of the best head
--- lift_in_va: as head_stats, of the best head
--- n_sentences: n, analysed sentences (after trim)
--- n_va: target sentences among the analysed ones
--- va_rate: n_va / max(1, n_sentences)
create or replace macro best_heads({{ params: tag, @metric }}) as table
with ordered as (
    select
        stats.*,
        row_number() over (
            partition by stats.model, stats.rollout_id, stats.layer
            order by best_head_key(stats.delta_va_vert) desc nulls last, stats.head
        ) as head_order
    from head_stats({{ pass: tag, @metric }}) as stats
),

chosen as (
    select
        ordered.*,
        ordered.delta_va_vert is not null as is_defined
    from ordered
    where ordered.head_order = 1
)

select
    chosen.model,
    chosen.rollout_id,
    chosen.layer,
    case when chosen.is_defined then chosen.head end as head,
    abs(chosen.delta_va_vert) as abs_delta_va_vert,
    case when chosen.is_defined then chosen.mean_va_vert end as mean_va_vert,
    case when chosen.is_defined then chosen.mean_nonva_vert end as mean_nonva_vert,
    chosen.delta_va_vert,
    case when chosen.is_defined then chosen.mean_in_va end as mean_in_va,
    case when chosen.is_defined then chosen.mean_in_nonva end as mean_in_nonva,
    case when chosen.is_defined then chosen.mean_out_va end as mean_out_va,
    case when chosen.is_defined then chosen.mean_va_to_va end as mean_va_to_va,
    case when chosen.is_defined then chosen.lift_in_va end as lift_in_va,
    chosen.n_sentences,
    chosen.n_va,
    chosen.va_rate
from chosen;

create or replace view best_heads as
select * from best_heads();
