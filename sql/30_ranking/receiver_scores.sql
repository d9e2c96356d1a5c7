-- Receiver score of each sentence (the thought-anchors paper; METRICS.md §8): the mean of
-- the sentence's vertical scores v_c (§5) over the model's k receiver heads
-- (receiver_heads), NULL scores omitted. The vertical scores use the receiver heads'
-- setting: by default the paper's (proximity_ignore 4, control_depth false, no trim, all
-- layers), so every sentence but the last p has a score.
-- Parameters: k (default as receiver_heads) and those of receiver_heads; only_rollouts
-- (NULL: every rollout; a list of ids: those rollouts' sentences, the heads still ranked
-- over every rollout).
--- model: model name
--- rollout_id: rollout
--- idx: original sentence index
--- receiver_score: mean v_c over the receiver heads with a defined v_c; NULL when none
--- n_heads: receiver heads with a defined v_c for this sentence
create or replace macro receiver_scores({{ params: k, tag, @metric, only_rollouts }}) as table
with heads as (
    select
        receivers.model,
        receivers.layer,
        receivers.head
    from
        receiver_heads({{ pass: k, tag, @metric }}) as receivers
),

scores as (
    select
        vert.model,
        vert.rollout_id,
        vert.layer,
        vert.head,
        vert.idx,
        vert.vertical_score
    from
        vertical_scores({{ pass: tag, @metric, only_rollouts }}) as vert
)

select
    scores.model,
    scores.rollout_id,
    scores.idx,
    avg(scores.vertical_score) as receiver_score,
    count(scores.vertical_score)::integer as n_heads
from scores
inner join heads using (model, layer, head)
group by scores.model, scores.rollout_id, scores.idx;

create or replace view receiver_scores as
select * from receiver_scores();
