-- Per rollout: the analysed range of sentences after the trim of METRICS.md §4 and
-- the count of target sentences (tag of §1), before and after the trim.
-- Parameters: tag (target tag, exact match), trim (drop first and last sentence when N >= 3).
--- rollout_id: rollout (rollouts.rollout_id)
--- rollout_name: the rollout directory's own name
--- n_sentences: n, analysed sentences (after trim, METRICS.md §4)
--- n_va: target sentences among the analysed ones
--- va_rate: n_va / max(1, n_sentences) (analysed)
--- n_sentences_original: N, sentences before trim (rollouts.n_sentences)
--- n_va_original: target sentences among all N (before trim)
--- first_idx: original index of analysed sentence r = 0 (1 when trimmed, else 0)
create or replace macro analysed_rollouts({{ params: tag, trim }}) as table
with sizes as (
    select
        rollouts.rollout_id,
        rollouts.rollout_name,
        rollouts.n_sentences as n_sentences_original,
        case when trim and rollouts.n_sentences >= 3 then 1 else 0 end as first_idx
    from rollouts
),

-- targets among all N sentences (analysed_sentences without trim), and in the trimmed range
target_counts as (
    select
        sentences.rollout_id,
        count(*) filter (where sentences.is_target) as n_va_original,
        count(*) filter (
            where sentences.is_target
            and sentences.idx >= sizes.first_idx
            and sentences.idx < sizes.n_sentences_original - sizes.first_idx
        ) as n_va
    from analysed_sentences(tag := tag, trim := false) as sentences
    inner join sizes using (rollout_id)
    group by sentences.rollout_id
)

select
    sizes.rollout_id,
    sizes.rollout_name,
    sizes.n_sentences_original - 2 * sizes.first_idx as n_sentences,
    coalesce(target_counts.n_va, 0)::integer as n_va,
    coalesce(target_counts.n_va, 0)
    / greatest(1, sizes.n_sentences_original - 2 * sizes.first_idx)::double as va_rate,
    sizes.n_sentences_original,
    coalesce(target_counts.n_va_original, 0)::integer as n_va_original,
    sizes.first_idx
from sizes
left join target_counts on target_counts.rollout_id = sizes.rollout_id;

create or replace view analysed_rollouts as
select * from analysed_rollouts();
