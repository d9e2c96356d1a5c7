-- Does attention track a sentence field? (docs/STATISTICS.md §13) Spearman correlation
-- between a numeric sentence field (numeric_fields: by default the first counterfactual
-- importance field present) and (a) the receiver score (receiver_scores, k heads, the
-- paper's setting), (b) each head's vertical score v_c (vertical_scores, the other
-- parameters), per rollout and pooled over rollouts, over the sentences where both are
-- defined. Spearman = Pearson correlation of the average ranks (scipy.stats.spearmanr).
-- Two-sided permutation p-value: permutation k (1..permutations) shuffles the field among
-- a rollout's sentences in the order of md5(seed || '/' || k || '/' || rollout_id || '/' ||
-- idx) (the keys of §2); the same shuffle serves every head and the pooled statistic (which
-- shuffles within each rollout); p = (1 + #{k : |rho_k| >= |rho_0| - 1e-12}) / (1 + K).
-- Parameters: field, k, permutations, seed, and proximity_ignore, control_depth,
-- score_type, trim, layers, all_layers for the vertical scores (as vertical_scores).
--- model: model name
--- field: the sentence field correlated
--- score: 'receiver_score' or 'vertical_score'
--- layer: layer of the head (NULL for receiver_score)
--- head: query head (NULL for receiver_score)
--- rollout_id: rollout; NULL for the pooled row (every rollout's sentences together)
--- n_sentences: sentences with both the field and the score defined
--- spearman_rho: Spearman's rank correlation; NULL when either side is constant
--- p_value: two-sided permutation p-value of spearman_rho; NULL when rho is NULL
create or replace macro field_correlations(
    {{ params: field, k, @metric, permutations, seed }}
) as table
with scores as (
    select
        receivers.model,
        receivers.rollout_id,
        receivers.idx,
        'receiver_score' as score,
        null::integer as layer,
        null::integer as head,
        receivers.receiver_score as y
    from receiver_scores(k := k) as receivers
    union all
    select
        vert.model,
        vert.rollout_id,
        vert.idx,
        'vertical_score' as score,
        vert.layer::integer as layer,
        vert.head::integer as head,
        vert.vertical_score as y
    from
        vertical_scores({{ pass: @metric }}) as vert
),

pairs as (
    select
        scores.model,
        fields.field,
        scores.score,
        scores.layer,
        scores.head,
        scores.rollout_id,
        scores.idx,
        fields.value as x,
        scores.y
    from scores
    inner join numeric_fields(field := field) as fields using (rollout_id, idx)
    where scores.y is not null
),

series_pairs as (
    select
        pairs.*,
        dense_rank() over (
            order by pairs.model, pairs.field, pairs.score, pairs.layer, pairs.head
        ) as series_key
    from pairs
),

-- average ranks: the lowest rank of a tie plus half the tie's size minus one;
-- within the rollout (rx, ry) and over every rollout's sentences (pooled_rx, pooled_ry)
ranked as (
    select
        series_pairs.*,
        rank() over (partition by series_key, rollout_id order by x)
        + (count(*) over (partition by series_key, rollout_id, x) - 1) / 2.0 as rx,
        rank() over (partition by series_key, rollout_id order by y)
        + (count(*) over (partition by series_key, rollout_id, y) - 1) / 2.0 as ry,
        rank() over (partition by series_key order by x)
        + (count(*) over (partition by series_key, x) - 1) / 2.0 as pooled_rx,
        rank() over (partition by series_key order by y)
        + (count(*) over (partition by series_key, y) - 1) / 2.0 as pooled_ry
    from series_pairs
),

-- one row per (series, rollout): the ranks as lists in sentence order, and their sums
per_rollout as (
    select
        ranked.series_key,
        any_value(ranked.model) as model,
        any_value(ranked.field) as field,
        any_value(ranked.score) as score,
        any_value(ranked.layer) as layer,
        any_value(ranked.head) as head,
        ranked.rollout_id,
        list(ranked.idx order by ranked.idx) as idx_list,
        list(ranked.rx order by ranked.idx) as rx_list,
        list(ranked.ry order by ranked.idx) as ry_list,
        list(ranked.pooled_rx order by ranked.idx) as pooled_rx_list,
        list(ranked.pooled_ry order by ranked.idx) as pooled_ry_list,
        count(*) as n,
        sum(ranked.rx) as sx,
        sum(ranked.ry) as sy,
        sum(ranked.rx * ranked.rx) as sxx,
        sum(ranked.ry * ranked.ry) as syy,
        sum(ranked.pooled_rx) as pooled_sx,
        sum(ranked.pooled_ry) as pooled_sy,
        sum(ranked.pooled_rx * ranked.pooled_rx) as pooled_sxx,
        sum(ranked.pooled_ry * ranked.pooled_ry) as pooled_syy
    from ranked
    group by ranked.series_key, ranked.rollout_id
),

-- the distinct sentence sets to shuffle (usually one or two per rollout)
sentence_sets as (
    select distinct
        per_rollout.rollout_id,
        per_rollout.idx_list
    from per_rollout
),

draws as (
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
),

keyed as (
    select
        sentence_sets.rollout_id,
        sentence_sets.idx_list,
        draws.permutation,
        positions.position,
        md5(
            seed::bigint::varchar || '/' || draws.permutation::varchar || '/'
            || sentence_sets.rollout_id || '/' || sentence_sets.idx_list[positions.position]::varchar
        ) as sort_key
    from sentence_sets
    cross join draws
    cross join lateral (
        select unnest(range(1, len(sentence_sets.idx_list) + 1)) as position
    ) as positions
),

-- shuffle k: position a of the sentence order takes the field rank of position shuffle[a];
-- permutation 0 is the observed order
shuffles as (
    select
        keyed.rollout_id,
        keyed.idx_list,
        keyed.permutation,
        list(keyed.position order by keyed.sort_key, keyed.idx_list[keyed.position])
            as shuffle
    from keyed
    group by keyed.rollout_id, keyed.idx_list, keyed.permutation
    union all
    select
        sentence_sets.rollout_id,
        sentence_sets.idx_list,
        0 as permutation,
        range(1, len(sentence_sets.idx_list) + 1) as shuffle
    from sentence_sets
),

cross_products as (
    select
        per_rollout.series_key,
        per_rollout.rollout_id,
        shuffles.permutation,
        list_dot_product(list_select(per_rollout.rx_list, shuffles.shuffle), per_rollout.ry_list)
            as sxy,
        list_dot_product(
            list_select(per_rollout.pooled_rx_list, shuffles.shuffle), per_rollout.pooled_ry_list
        ) as pooled_sxy
    from per_rollout
    inner join shuffles using (rollout_id, idx_list)
),

-- the sums of the Pearson correlation of the ranks: per rollout, and pooled (rollout_id
-- NULL) by adding up the rollouts' pooled-rank sums; under a shuffle only sxy changes
sums as (
    select
        per_rollout.series_key,
        per_rollout.rollout_id,
        cross_products.permutation,
        per_rollout.n,
        per_rollout.sx,
        per_rollout.sy,
        per_rollout.sxx,
        per_rollout.syy,
        cross_products.sxy
    from cross_products
    inner join per_rollout using (series_key, rollout_id)
    union all
    select
        per_rollout.series_key,
        null as rollout_id,
        cross_products.permutation,
        sum(per_rollout.n) as n,
        sum(per_rollout.pooled_sx) as sx,
        sum(per_rollout.pooled_sy) as sy,
        sum(per_rollout.pooled_sxx) as sxx,
        sum(per_rollout.pooled_syy) as syy,
        sum(cross_products.pooled_sxy) as sxy
    from cross_products
    inner join per_rollout using (series_key, rollout_id)
    group by per_rollout.series_key, cross_products.permutation
),

rhos as (
    select
        sums.series_key,
        sums.rollout_id,
        sums.permutation,
        sums.n,
        (sums.sxy - sums.sx * sums.sy / sums.n)
        / nullif(
            sqrt(
                greatest(sums.sxx - sums.sx * sums.sx / sums.n, 0)
                * greatest(sums.syy - sums.sy * sums.sy / sums.n, 0)
            ),
            0
        ) as rho
    from sums
),

tested as (
    select
        rhos.series_key,
        rhos.rollout_id,
        any_value(rhos.n) as n,
        any_value(rhos.rho) filter (where rhos.permutation = 0) as rho,
        count(*) filter (where rhos.permutation > 0) as n_permutations,
        count(*) filter (
            where rhos.permutation > 0
            and abs(rhos.rho) >= abs(observed.rho) - 1e-12
        ) as n_as_extreme
    from rhos
    inner join rhos as observed
        on observed.series_key = rhos.series_key
        and observed.rollout_id is not distinct from rhos.rollout_id
        and observed.permutation = 0
    group by rhos.series_key, rhos.rollout_id
),

series as (
    select distinct
        per_rollout.series_key,
        per_rollout.model,
        per_rollout.field,
        per_rollout.score,
        per_rollout.layer,
        per_rollout.head
    from per_rollout
)

select
    series.model,
    series.field,
    series.score,
    series.layer,
    series.head,
    tested.rollout_id,
    tested.n::integer as n_sentences,
    tested.rho as spearman_rho,
    case
        when tested.rho is not null
            then (1 + tested.n_as_extreme) / (1 + tested.n_permutations)::double
    end as p_value
from tested
inner join series using (series_key)
order by
    series.model, series.field, series.score, series.layer, series.head,
    tested.rollout_id nulls first;

create or replace view field_correlations as
select * from field_correlations();
