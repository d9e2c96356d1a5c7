-- One row per analysed sentence (METRICS.md §4): original index idx, analysed index
-- r = idx - first_idx, and whether it carries the target tag (mask m[r], §1).
-- Parameters: tag, trim (as analysed_rollouts).
--- rollout_id: rollout (rollouts.rollout_id)
--- idx: original sentence index
--- r: analysed index (idx - 1 when trimmed, else idx)
--- is_target: the sentence carries the target tag (m[r])
--- n_sentences: n, analysed sentences of the rollout
--- n_va: target sentences among the analysed ones
--- first_idx: original index of r = 0
--- rollout_key: integer key of the rollout (1, 2, ... in rollout_id order), for joins
--- sentence_key: integer key of the (rollout, idx) sentence, unique in the result, for joins
create or replace macro analysed_sentences({{ params: tag, trim }}) as table
with sizes as (
    select
        rollouts.rollout_id,
        rollouts.n_sentences as n_sentences_original,
        case when trim and rollouts.n_sentences >= 3 then 1 else 0 end as first_idx
    from rollouts
),

analysed as (
    select
        sizes.rollout_id,
        sizes.first_idx,
        sizes.n_sentences_original - 2 * sizes.first_idx as n_sentences,
        unnest(range(sizes.first_idx, sizes.n_sentences_original - sizes.first_idx)) as idx
    from sizes
),

targets as (
    select distinct
        sentence_tags.rollout_id,
        sentence_tags.idx
    from sentence_tags
    where sentence_tags.tag = tag
),

flagged as (
    select
        analysed.rollout_id,
        analysed.idx::integer as idx,
        (analysed.idx - analysed.first_idx)::integer as r,
        targets.idx is not null as is_target,
        analysed.n_sentences,
        analysed.first_idx
    from analysed
    left join targets using (rollout_id, idx)
)

select
    rollout_id,
    idx,
    r,
    is_target,
    n_sentences,
    (count(*) filter (where is_target) over (partition by rollout_id))::integer as n_va,
    first_idx,
    dense_rank() over (order by rollout_id)::integer as rollout_key,
    row_number() over (order by rollout_id, idx) as sentence_key
from flagged;

create or replace view analysed_sentences as
select * from analysed_sentences();
