-- Receiver heads (METRICS.md §8): per model, the k heads with the highest mean
-- kurtosis over rollouts (receiver_head_kurtosis, NULL kurtoses omitted); ties by
-- layer, then head. Heads whose kurtosis is undefined in every rollout are not ranked.
-- Parameters: k (default 20) and those of receiver_head_kurtosis with its defaults
-- (the paper's setting: proximity_ignore 4, control_depth false, no trim, all layers).
--- model: model name
--- rank: 1 = highest mean kurtosis
--- layer: layer index
--- head: query head index
--- mean_kurtosis: mean over rollouts of the head's kurtosis (defined values only)
--- n_rollouts: rollouts with a defined kurtosis for this head
create or replace macro receiver_heads({{ params: k, tag, @metric }}) as table
with per_head as (
    select
        kurt.model,
        kurt.layer,
        kurt.head,
        avg(kurt.kurtosis) as mean_kurtosis,
        count(kurt.kurtosis) as n_rollouts
    from
        receiver_head_kurtosis({{ pass: tag, @metric }}) as kurt
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

create or replace view receiver_heads as
select * from receiver_heads();
