-- The labels the statistics test: per (tag, rollout, scored column), whether the column
-- is a target, with its stratum under the chosen null (null_strata).
-- Tags: as analysed_tags (tag, or every tag with all_tags). A tag written
-- 'placebo:<tag>' is a placebo of <tag> (docs/STATISTICS.md §10): in each rollout and
-- position stratum it flags as many scored columns as <tag> does there, chosen by the key
-- md5('placebo/' || rollout_id || '/' || idx) (the first ones in ascending key order):
-- same count, same position distribution, no other link to the tag.
-- Parameters: tag, all_tags, null_model, proximity_ignore, trim, only_rollouts.
--- tag: target tag (or 'placebo:<tag>')
--- rollout_id: rollout
--- c: analysed column index (scored columns only)
--- idx: original sentence index of column c
--- is_target: column c carries the tag (for a placebo: is drawn)
--- stratum: stratum of column c under the chosen null (null_strata)
--- n_stratum: scored columns in that stratum
--- problem_id: the rollout's problem (rollouts.problem_id)
create or replace macro scored_labels(
    {{ params: tag, all_tags, null_model, proximity_ignore, trim, only_rollouts }}
) as table
with strata as (
    select *
    from null_strata({{ pass: null_model, proximity_ignore, trim, only_rollouts }})
),

real as (
    select
        labels.tag,
        labels.rollout_id,
        labels.r as c,
        labels.is_target
    from
        analysed_tags(
            tag := case when starts_with(tag, 'placebo:') then tag[9:] else tag end,
            {{ pass: all_tags, trim, only_rollouts }}
        ) as labels
    where is_scored_column(labels.r, labels.n_sentences, proximity_ignore)
),

joined as (
    select
        real.tag,
        real.is_target,
        strata.*,
        -- placebo draws: rank in the position stratum by the placebo key, and the tag's count there
        row_number() over placebo_window as placebo_rank,
        count(*) filter (where real.is_target) over placebo_window as n_target_in_stratum
    from real
    inner join strata using (rollout_id, c)
    window placebo_window as (
        partition by real.tag, strata.rollout_id, strata.position_stratum
        order by md5('placebo/' || strata.rollout_id || '/' || strata.idx::varchar), strata.idx
        rows between unbounded preceding and unbounded following
    )
)

select
    case when is_placebo then tag else joined.tag end as tag,
    joined.rollout_id,
    joined.c,
    joined.idx,
    case
        when is_placebo then joined.placebo_rank <= joined.n_target_in_stratum
        else joined.is_target
    end as is_target,
    joined.stratum,
    joined.n_stratum,
    joined.problem_id
from joined
cross join (select not all_tags and coalesce(starts_with(tag, 'placebo:'), false) as is_placebo);

create or replace view scored_labels as
select * from scored_labels();
