-- The combination step of head_consistency (docs/STATISTICS.md §6) over two relations
-- named by draws (consistency_draws' columns; only the observed rows, permutation 0, are
-- read) and partials (consistency_partials_of's rows over those draws, summed here): the
-- descriptive columns, the 'position' null's combination of within-rollout draws or the
-- 'uniform' null's sign flips, max-T and q-values, exactly as head_consistency (which is
-- this macro over consistency_draws). Kept per-rollout draws and per-bucket partials (the
-- report's) are combined without recomputing them; the max-T family is every head present.
-- Parameters: draws (relation name, default the view consistency_draws), partials
-- (relation name, default the view consistency_partials_of, over consistency_draws),
-- permutations (the K the draws were made with), seed, null_model.
--- tag: target tag
--- model: model name
--- layer: layer index
--- head: query head index
--- n_rollouts: rollouts where the head's ΔVA is defined
--- mean_delta_va_vert: mean ΔVA over those rollouts
--- sd_delta_va_vert: sample standard deviation of ΔVA (n - 1); NULL when n < 2
--- t_statistic: mean / (sd / sqrt(n)); NULL when n < 2 or sd = 0
--- share_same_sign: share of those rollouts whose ΔVA has the sign of the mean (0 never counts); NULL when the mean is 0
--- permutations: K, the number of permutations (or sign flips) drawn
--- p_value: two-sided permutation p-value of this head's mean ΔVA (see null_model)
--- p_value_fwer: family-wise (max-T over all heads of the model in the chosen layers) p-value
--- n_problems: problems among those rollouts (clusters of the 'position' statistic)
--- mean_excess_delta_va: M_0, mean over problems of the mean excess ΔVA (ΔVA minus what position and length predict)
--- q_value: Benjamini-Hochberg q-value of p_value over the heads of this tag and model
create or replace macro head_consistency_of({{ params: draws, partials, permutations, seed, null_model }}) as table
with deltas as (
    select * from query_table(draws)
),

summaries as (
    select
        deltas.tag,
        deltas.model,
        deltas.layer,
        deltas.head,
        count(*) as n_rollouts,
        count(distinct deltas.cluster_id) as n_problems,
        avg(deltas.delta_va_vert) as mean_delta_va_vert,
        stddev_samp(deltas.delta_va_vert) as sd_delta_va_vert,
        sum(deltas.delta_va_vert * deltas.delta_va_vert) as delta_square_sum,
        list(deltas.delta_va_vert order by deltas.rollout_id) as delta_by_rollout,
        list(deltas.rollout_id order by deltas.rollout_id) as rollout_ids
    from deltas
    where deltas.permutation = 0
    group by deltas.tag, deltas.model, deltas.layer, deltas.head
),

-- 'uniform': the sign patterns, s_0 = +1 (the observation), one per distinct rollout set
sign_patterns as (
    select
        sets.rollout_ids,
        draws.permutation,
        list(
            case
                when draws.permutation = 0 then 1.0
                when substr(md5(
                    'sign/' || seed::bigint::varchar || '/' || draws.permutation::varchar || '/' || listed.rollout_id
                ), 1, 1) < '8' then 1.0
                else -1.0
            end
            order by listed.position
        ) as signs_by_rollout
    from (select distinct summaries.rollout_ids from summaries where null_model = 'uniform') as sets
    cross join unnest(sets.rollout_ids) with ordinality as listed(rollout_id, position)
    cross join range(0, checked_permutations(permutations) + 1) as draws(permutation)
    group by sets.rollout_ids, draws.permutation
),

flipped as (
    select
        summaries.*,
        sign_patterns.permutation,
        list_dot_product(summaries.delta_by_rollout, sign_patterns.signs_by_rollout) / summaries.n_rollouts
            as flipped_mean
    from summaries
    inner join sign_patterns using (rollout_ids)
),

-- |t_k| from the flipped mean (Σ x² does not change under sign flips), observation included
sign_flip_stats as (
    select
        flipped.tag,
        flipped.model,
        flipped.layer,
        flipped.head,
        flipped.permutation,
        abs(flipped.flipped_mean * flipped.n_rollouts) as own_stat,
        case
            when flipped.n_rollouts < 2 then null
            when flipped.delta_square_sum - flipped.n_rollouts * flipped.flipped_mean * flipped.flipped_mean > 0
                then abs(flipped.flipped_mean) / sqrt(greatest(
                    (flipped.delta_square_sum - flipped.n_rollouts * flipped.flipped_mean * flipped.flipped_mean)
                    / (flipped.n_rollouts - 1),
                    0
                ) / flipped.n_rollouts)
            when flipped.flipped_mean != 0 then 'infinity'::double
        end as max_t_stat
    from flipped
),

-- 'position': M_k, the mean over problems of the mean excess ΔVA of the problem's rollouts,
-- from the partials of disjoint sets of problems
combined as (
    select
        parts.tag,
        parts.model,
        parts.layer,
        parts.head,
        parts.permutation,
        sum(parts.problem_mean_sum) / sum(parts.n_problems) as combined_mean
    from query_table(partials) as parts
    where null_model = 'position'
    group by parts.tag, parts.model, parts.layer, parts.head, parts.permutation
),

combined_stats as (
    select
        combined.tag,
        combined.model,
        combined.layer,
        combined.head,
        combined.permutation,
        abs(combined.combined_mean) as own_stat,
        abs(combined.combined_mean) / nullif(stddev_samp(combined.combined_mean) filter (
            where combined.permutation > 0
        ) over (partition by combined.tag, combined.model, combined.layer, combined.head), 0) as max_t_stat
    from combined
),

-- one code path from here: stat_0 of each head against the draws k >= 1
head_stats as (
    select * from sign_flip_stats
    union all
    select * from combined_stats
),

max_t as (
    select
        head_stats.tag,
        head_stats.model,
        head_stats.permutation,
        max(head_stats.max_t_stat) as max_abs_t
    from head_stats
    where head_stats.permutation > 0
    group by all
),

observed as (
    select head_stats.*
    from head_stats
    where head_stats.permutation = 0
),

counted as (
    select
        observed.tag,
        observed.model,
        observed.layer,
        observed.head,
        any_value(observed.max_t_stat) as observed_t,
        count(*) filter (where is_as_extreme(draws.own_stat, observed.own_stat)) as n_as_extreme,
        count(*) filter (where is_as_extreme_t(max_t.max_abs_t, observed.max_t_stat)) as n_fwer_as_extreme
    from observed
    left join head_stats as draws
        on draws.tag = observed.tag
        and draws.model = observed.model
        and draws.layer = observed.layer
        and draws.head = observed.head
        and draws.permutation > 0
    left join max_t
        on max_t.tag = observed.tag
        and max_t.model = observed.model
        and max_t.permutation = draws.permutation
    group by observed.tag, observed.model, observed.layer, observed.head
),

tested as (
    select
        summaries.*,
        permutation_p_value(counted.n_as_extreme, permutations, false) as p_value,
        case
            when counted.observed_t is not null
                then permutation_p_value(counted.n_fwer_as_extreme, permutations, false)
        end as p_value_fwer,
        combined.combined_mean as mean_excess_delta_va
    from summaries
    inner join counted using (tag, model, layer, head)
    left join combined
        on combined.tag = summaries.tag
        and combined.model = summaries.model
        and combined.layer = summaries.layer
        and combined.head = summaries.head
        and combined.permutation = 0
),

ranked as (
    select
        tested.*,
        bh_rank(tested.p_value, [tested.tag, tested.model]) as p_rank,
        count(*) over (partition by tested.tag, tested.model) as family_size
    from tested
)

select
    ranked.tag,
    ranked.model,
    ranked.layer,
    ranked.head,
    ranked.n_rollouts,
    ranked.mean_delta_va_vert,
    ranked.sd_delta_va_vert,
    ranked.mean_delta_va_vert / nullif(ranked.sd_delta_va_vert / sqrt(ranked.n_rollouts), 0) as t_statistic,
    case
        when ranked.mean_delta_va_vert != 0
            then len(list_filter(
                ranked.delta_by_rollout,
                lambda x: sign(x) = sign(ranked.mean_delta_va_vert)
            )) / ranked.n_rollouts::double
    end as share_same_sign,
    permutations::integer as permutations,
    ranked.p_value,
    ranked.p_value_fwer,
    ranked.n_problems,
    ranked.mean_excess_delta_va,
    bh_q_value(ranked.p_value, ranked.p_rank, ranked.family_size, [ranked.tag, ranked.model])
        as q_value
from ranked;

create or replace view head_consistency_of as
select * from head_consistency_of();
