-- The ranking step of receiver_heads (METRICS.md §8) over the rows of a relation named by
-- kurtosis (a table, view or CTE with receiver_head_kurtosis' columns): per model, the k
-- heads with the highest mean kurtosis over the rollouts present, NULL kurtoses omitted;
-- ties by layer, then head. Kept per-rollout kurtoses (the report's) are ranked without
-- recomputing them.
-- Parameters: kurtosis (relation name, default the view receiver_head_kurtosis), k.
--- model: model name
--- rank: 1 = highest mean kurtosis
--- layer: layer index
--- head: query head index
--- mean_kurtosis: mean over rollouts of the head's kurtosis (defined values only)
--- n_rollouts: rollouts with a defined kurtosis for this head
create or replace macro receiver_heads_of({{ params: kurtosis, k }}) as table
with per_head as (
    select
        kurt.model,
        kurt.layer,
        kurt.head,
        avg(kurt.kurtosis) as mean_kurtosis,
        count(kurt.kurtosis) as n_rollouts
    from query_table(kurtosis) as kurt
    group by kurt.model, kurt.layer, kurt.head
    having count(kurt.kurtosis) > 0
),

ranked as (
    select
        per_head.*,
        row_number() over (
            partition by per_head.model
            order by per_head.mean_kurtosis desc, per_head.layer, per_head.head
        ) as head_rank
    from per_head
)

select
    ranked.model,
    ranked.head_rank as rank,
    ranked.layer,
    ranked.head,
    ranked.mean_kurtosis,
    ranked.n_rollouts
from ranked
where ranked.head_rank <= k
order by ranked.model, ranked.head_rank;

create or replace view receiver_heads_of as
select * from receiver_heads_of();
