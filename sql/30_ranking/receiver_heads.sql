-- Receiver heads (METRICS.md §8): per model, the k heads with the highest mean
-- kurtosis over rollouts (receiver_head_kurtosis, NULL kurtoses omitted); ties by
-- layer, then head. Heads whose kurtosis is undefined in every rollout are not ranked.
-- This macro is receiver_head_kurtosis combined by receiver_heads_of.
-- Parameters: k (default 20) and those of receiver_head_kurtosis with its defaults
-- (the paper's setting: proximity_ignore 4, control_depth false, no trim, all layers).
--- model: model name
--- rank: 1 = highest mean kurtosis
--- layer: layer index
--- head: query head index
--- mean_kurtosis: mean over rollouts of the head's kurtosis (defined values only)
--- n_rollouts: rollouts with a defined kurtosis for this head
create or replace macro receiver_heads({{ params: k, tag, @metric }}) as table
with receiver_kurtosis as materialized (
    select *
    from receiver_head_kurtosis({{ pass: tag, @metric }})
)

select *
from receiver_heads_of(kurtosis := 'receiver_kurtosis', k := k);

create or replace view receiver_heads as
select * from receiver_heads();
