-- Per (model, tag): how many sentences carry the tag and in how many rollouts, counted over
-- the rollouts with attention of that model (before any trim). Lists the tags a report can
-- be built for.
--- model: model name
--- tag: sentence tag
--- n_sentences: sentences carrying the tag
--- n_rollouts: rollouts with at least one such sentence
create or replace view tag_counts as
with tagged as (
    select distinct
        sentence_tags.rollout_id,
        sentence_tags.idx,
        sentence_tags.tag
    from sentence_tags
)

select
    runs.model,
    tagged.tag,
    count(*) as n_sentences,
    count(distinct tagged.rollout_id) as n_rollouts
from tagged
inner join attention_runs as runs using (rollout_id)
group by runs.model, tagged.tag
order by runs.model, tagged.tag;
