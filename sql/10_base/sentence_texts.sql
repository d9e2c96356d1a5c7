-- One row per sentence of every rollout: its text and the tags it carries (METRICS.md §1),
-- before any trim.
--- rollout_id: rollout (rollouts.rollout_id)
--- idx: original sentence index
--- text: the sentence text
--- tags: the sentence's tags, distinct and sorted (empty list when it has none)
create or replace view sentence_texts as
with tags as (
    select
        sentence_tags.rollout_id,
        sentence_tags.idx,
        list(distinct sentence_tags.tag order by sentence_tags.tag) as tags
    from sentence_tags
    group by sentence_tags.rollout_id, sentence_tags.idx
)

select
    sentences.rollout_id,
    sentences.idx,
    sentences.text,
    coalesce(tags.tags, []::varchar[]) as tags
from sentences
left join tags
    on tags.rollout_id = sentences.rollout_id
    and tags.idx = sentences.idx;
