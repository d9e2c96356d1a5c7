-- The seeded permutations of docs/STATISTICS.md §2: for permutation k (1..permutations)
-- of a rollout, its scored columns, within each stratum of the null (null_strata), in
-- ascending order of the key
--     md5(seed || '/' || k || '/' || rollout_id || '/' || idx)   (lowercase hex text)
-- ties (never seen in practice) by idx. The permuted targets of a tag with t_s scored
-- target columns in a stratum are the first t_s columns of that stratum's order (with
-- null 'uniform', one stratum: the first t columns, the earlier test). Reproducible from
-- (seed, k, rollout_id, idx) and the strata alone: no random(), no thread dependence.
-- Parameters: permutations (K >= 0), seed (integer), null_model, proximity_ignore p (>= 0), trim,
-- only_rollouts.
--- rollout_id: rollout
--- permutation: permutation number k, 1..permutations
--- position: 1-based position of the column in permutation k's order of its stratum
--- c: analysed column index
--- idx: original sentence index of column c
--- n_scored: number of scored columns of the rollout (n - p when positive)
--- stratum: stratum of column c under the chosen null (null_strata)
create or replace macro column_permutations(
    {{ params: permutations, seed, null_model, proximity_ignore, trim, only_rollouts }}
) as table
with keyed as (
    select
        strata.rollout_id,
        draws.permutation,
        strata.c,
        strata.idx,
        strata.n_scored,
        strata.stratum,
        md5(
            seed::bigint::varchar || '/' || draws.permutation::varchar || '/'
            || strata.rollout_id || '/' || strata.idx::varchar
        ) as sort_key
    from null_strata({{ pass: null_model, proximity_ignore, trim, only_rollouts }}) as strata
    cross join (
        select range::integer as permutation
        from range(1, checked_permutations(permutations) + 1)
        where seed is not null or error('seed must be an integer (docs/STATISTICS.md §2)')
    ) as draws
)

select
    keyed.rollout_id,
    keyed.permutation,
    row_number() over (
        partition by keyed.rollout_id, keyed.permutation, keyed.stratum
        order by keyed.sort_key, keyed.idx
    )::integer as position,
    keyed.c,
    keyed.idx,
    keyed.n_scored,
    keyed.stratum
from keyed;

create or replace view column_permutations as
select * from column_permutations();
