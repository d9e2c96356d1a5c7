-- One row per (tag, analysed sentence): the multi-tag form of analysed_sentences
-- (METRICS.md §1, §4), so the statistics can run for every tag in one pass.
-- Tags: the tag parameter alone, or, with all_tags, every tag present in sentence_tags
-- (then the tag parameter is ignored). A tag absent from a rollout flags none of its
-- sentences (is_target false everywhere, n_target 0).
-- Parameters: tag, all_tags, trim (as analysed_sentences); only_rollouts (NULL: every
-- rollout; a list of ids: those rollouts' rows alone, so the statistics above can run per
-- rollout or per batch of rollouts).
-- NOTE: this object reads the storage table sentence_tags (for the list of tags and the
-- per-tag flags); by the layer rule it belongs in 10_base (see docs/STATISTICS.md §8).
--- tag: target tag
--- rollout_id: rollout (rollouts.rollout_id)
--- idx: original sentence index
--- r: analysed index (idx - 1 when trimmed, else idx)
--- is_target: the sentence carries the tag (m[r])
--- n_sentences: n, analysed sentences of the rollout
--- n_target: sentences carrying the tag among the analysed ones
--- n_chars: length of the sentence text in characters (NULL when no text is stored)
--- problem_id: the rollout's problem (rollouts.problem_id; rollouts of one problem are resamples)
create or replace macro analysed_tags({{ params: tag, all_tags, trim, only_rollouts }}) as table
with analysed_rows as (
    select
        analysed.rollout_id,
        analysed.idx,
        analysed.r,
        analysed.n_sentences
    from analysed_sentences({{ pass: tag, trim }}) as analysed
    where is_listed(analysed.rollout_id, only_rollouts)
),

chosen_tags as (
    select tag as target_tag
    where not all_tags
    union
    select distinct sentence_tags.tag as target_tag
    from sentence_tags
    where all_tags
),

tagged as (
    select distinct
        sentence_tags.rollout_id,
        sentence_tags.idx,
        sentence_tags.tag as target_tag
    from sentence_tags
    inner join chosen_tags on chosen_tags.target_tag = sentence_tags.tag
),

flagged as (
    select
        chosen_tags.target_tag,
        analysed.rollout_id,
        analysed.idx,
        analysed.r,
        tagged.idx is not null as is_target,
        analysed.n_sentences,
        length(texts.text) as n_chars,
        rollouts.problem_id
    from analysed_rows as analysed
    cross join chosen_tags
    inner join rollouts using (rollout_id)
    left join sentences as texts using (rollout_id, idx)
    left join tagged
        on tagged.rollout_id = analysed.rollout_id
        and tagged.idx = analysed.idx
        and tagged.target_tag = chosen_tags.target_tag
)

select
    flagged.target_tag as tag,
    flagged.rollout_id,
    flagged.idx,
    flagged.r,
    flagged.is_target,
    flagged.n_sentences,
    (count(*) filter (where flagged.is_target) over (
        partition by flagged.target_tag, flagged.rollout_id
    ))::integer as n_target,
    flagged.n_chars::integer as n_chars,
    flagged.problem_id
from flagged;

create or replace view analysed_tags as
select * from analysed_tags();
