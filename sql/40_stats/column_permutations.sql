-- The seeded permutations of docs/STATISTICS.md §2: for permutation k (1..permutations)
-- of a rollout, its scored columns (analysed columns c <= n - 1 - p, exactly those with a
-- defined v_c, METRICS.md §5) in ascending order of the key
--     md5(seed || '/' || k || '/' || rollout_id || '/' || idx)   (lowercase hex text)
-- ties (never seen in practice) by idx. The permuted targets of a tag with t scored target
-- columns are the first t columns of that order. Reproducible from (seed, k, rollout_id,
-- idx) alone: no random(), no thread or version dependence.
-- Parameters: permutations (K >= 0), seed (integer), proximity_ignore p (>= 0), trim.
--- rollout_id: rollout
--- permutation: permutation number k, 1..permutations
--- position: 1-based position of the column in permutation k's order
--- c: analysed column index
--- idx: original sentence index of column c
--- n_scored: number of scored columns of the rollout (n - p when positive)
create or replace macro column_permutations(
    permutations := 1000,
    seed := 0,
    proximity_ignore := 4,
    trim := true
) as table
with scored as (
    select
        sentences.rollout_id,
        sentences.r as c,
        sentences.idx,
        count(*) over (partition by sentences.rollout_id) as n_scored
    from analysed_sentences(tag := null, trim := trim) as sentences
    where
        case
            when proximity_ignore is null or proximity_ignore < 0
                then error('proximity_ignore must be an integer >= 0 (METRICS.md §5)')
            else sentences.r <= sentences.n_sentences - 1 - proximity_ignore
        end
),

keyed as (
    select
        scored.rollout_id,
        draws.permutation,
        scored.c,
        scored.idx,
        scored.n_scored,
        md5(
            seed::bigint::varchar || '/' || draws.permutation::varchar || '/'
            || scored.rollout_id || '/' || scored.idx::varchar
        ) as sort_key
    from scored
    cross join (
        select range::integer as permutation
        from
            range(
                1,
                case
                    when permutations is null or permutations < 0
                        then error('permutations must be an integer >= 0 (docs/STATISTICS.md §2)')
                    when seed is null
                        then error('seed must be an integer (docs/STATISTICS.md §2)')
                    else permutations
                end + 1
            )
    ) as draws
)

select
    keyed.rollout_id,
    keyed.permutation,
    row_number() over (
        partition by keyed.rollout_id, keyed.permutation
        order by keyed.sort_key, keyed.idx
    )::integer as position,
    keyed.c,
    keyed.idx,
    keyed.n_scored::integer as n_scored
from keyed;

create or replace view column_permutations as
select * from column_permutations();
