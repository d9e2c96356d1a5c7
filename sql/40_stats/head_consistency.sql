-- Consistency of ΔVA across rollouts, per (tag, model, layer, head) (docs/STATISTICS.md §6):
-- over the rollouts where the head's ΔVA (METRICS.md §6) is defined, x_1..x_n: the mean,
-- the sample standard deviation (n - 1), t = mean / (sd / sqrt(n)), the share of rollouts
-- whose ΔVA has the sign of the mean, and two sign-flip permutation p-values. Under the
-- null "the head does not prefer target sentences", each x_r is symmetric around 0;
-- permutation k multiplies x_r by s_k(r) = +1 if the first hex digit of
-- md5('sign/' || seed || '/' || k || '/' || rollout_id) is 0-7, else -1 (the same signs
-- for every head, layer and tag of a rollout).
--   p_value      = (1 + #{k >= 1 : |Σ s_k x| >= |Σ x| - 1e-12}) / (1 + K)
--   p_value_fwer = (1 + #{k >= 1 : max_h |t_k(h)| >= |t_0| - 1e-9}) / (1 + K), the max over
--                  every head of the model in the chosen layers (Westfall-Young max-T), where
--                  t_k = m_k / sqrt(v_k / n), m_k = Σ s_k x / n, v_k = (Σ x² - n m_k²) / (n - 1).
-- Default layers: every stored layer (all_layers := true), so "is there a head of this
-- model that attends to target sentences?" is answered by min(p_value_fwer).
-- Parameters: tag, all_tags, permutations (K, sign flips), seed, proximity_ignore,
-- control_depth, score_type, trim (the notebook's ΔVA setting), layers, all_layers.
--- tag: target tag
--- model: model name
--- layer: layer index
--- head: query head index
--- n_rollouts: rollouts where the head's ΔVA is defined
--- mean_delta_va_vert: mean ΔVA over those rollouts
--- sd_delta_va_vert: sample standard deviation of ΔVA (n - 1); NULL when n < 2
--- t_statistic: mean / (sd / sqrt(n)); NULL when n < 2 or sd = 0
--- share_same_sign: share of those rollouts whose ΔVA has the sign of the mean (0 never counts); NULL when the mean is 0
--- permutations: K, the number of sign-flip permutations drawn
--- p_value: two-sided sign-flip p-value of the mean ΔVA of this head
--- p_value_fwer: family-wise (max-T over all heads of the model in the chosen layers) p-value
create or replace macro head_consistency(
    tag := 'verbalized_evaluation_awareness',
    all_tags := false,
    permutations := 1000,
    seed := 0,
    proximity_ignore := 4,
    control_depth := true,
    score_type := 'mean',
    trim := true,
    layers := null,
    all_layers := true
) as table
with deltas as materialized (
    select
        observed.tag,
        observed.model,
        observed.rollout_id,
        observed.layer,
        observed.head,
        observed.delta_va_vert
    from
        delta_va_permutations(
            tag := tag,
            all_tags := all_tags,
            permutations := 0,
            seed := seed,
            proximity_ignore := proximity_ignore,
            control_depth := control_depth,
            score_type := score_type,
            trim := trim,
            layers := layers,
            all_layers := all_layers
        ) as observed
),

summaries as (
    select
        deltas.tag,
        deltas.model,
        deltas.layer,
        deltas.head,
        count(*) as n_rollouts,
        avg(deltas.delta_va_vert) as mean_delta_va_vert,
        stddev_samp(deltas.delta_va_vert) as sd_delta_va_vert,
        sum(deltas.delta_va_vert) as delta_sum,
        sum(deltas.delta_va_vert * deltas.delta_va_vert) as delta_square_sum,
        -- the observed sign of each rollout, aligned with rollout_ids
        list(deltas.delta_va_vert order by deltas.rollout_id) as delta_by_rollout,
        list(deltas.rollout_id order by deltas.rollout_id) as rollout_ids
    from deltas
    group by deltas.tag, deltas.model, deltas.layer, deltas.head
),

signs as materialized (
    select
        rollouts.rollout_id,
        draws.permutation,
        case
            when substr(
                md5(
                    'sign/' || seed::bigint::varchar || '/' || draws.permutation::varchar
                    || '/' || rollouts.rollout_id
                ),
                1,
                1
            ) < '8'
                then 1.0
            else -1.0
        end as sign
    from (select distinct deltas.rollout_id from deltas) as rollouts
    cross join (
        select range::integer as permutation
        from
            range(
                1,
                case
                    when permutations is null or permutations < 0
                        then error('permutations must be an integer >= 0 (docs/STATISTICS.md §6)')
                    else permutations
                end + 1
            )
    ) as draws
),

-- each head's rollouts: a sign pattern per distinct rollout set (one per tag and model
-- when every head has the same rollouts, as with dense triangles)
rollout_sets as (
    select distinct summaries.rollout_ids
    from summaries
),

sign_patterns as (
    select
        rollout_sets.rollout_ids,
        signs.permutation,
        list(signs.sign order by listed.position) as signs_by_rollout
    from rollout_sets
    cross join unnest(rollout_sets.rollout_ids) with ordinality as listed(rollout_id, position)
    inner join signs on signs.rollout_id = listed.rollout_id
    group by rollout_sets.rollout_ids, signs.permutation
),

flipped as materialized (
    select
        summaries.tag,
        summaries.model,
        summaries.layer,
        summaries.head,
        sign_patterns.permutation,
        list_dot_product(summaries.delta_by_rollout, sign_patterns.signs_by_rollout) as flipped_sum,
        summaries.delta_square_sum,
        summaries.n_rollouts
    from summaries
    inner join sign_patterns on sign_patterns.rollout_ids = summaries.rollout_ids
),

-- t of a labelling from its sum: Σ x² does not change under sign flips
t_values as (
    select
        flipped.*,
        flipped.flipped_sum / flipped.n_rollouts as flipped_mean,
        greatest(
            (
                flipped.delta_square_sum
                - flipped.flipped_sum * flipped.flipped_sum / flipped.n_rollouts
            ) / (flipped.n_rollouts - 1),
            0
        ) as flipped_variance
    from flipped
    where flipped.n_rollouts >= 2
),

abs_t as (
    select
        t_values.*,
        case
            when t_values.flipped_variance > 0
                then abs(t_values.flipped_mean)
                / sqrt(t_values.flipped_variance / t_values.n_rollouts)
            when t_values.flipped_mean != 0 then 'infinity'::double
        end as abs_t
    from t_values
),

max_t as (
    select
        abs_t.tag,
        abs_t.model,
        abs_t.permutation,
        max(abs_t.abs_t) as max_abs_t
    from abs_t
    group by abs_t.tag, abs_t.model, abs_t.permutation
),

observed_t as (
    select
        summaries.*,
        case
            when summaries.n_rollouts >= 2 then
                greatest(
                    (
                        summaries.delta_square_sum
                        - summaries.delta_sum * summaries.delta_sum / summaries.n_rollouts
                    ) / (summaries.n_rollouts - 1),
                    0
                )
        end as observed_variance
    from summaries
),

observed_abs_t as (
    select
        observed_t.*,
        case
            when observed_t.observed_variance > 0
                then abs(observed_t.delta_sum / observed_t.n_rollouts)
                / sqrt(observed_t.observed_variance / observed_t.n_rollouts)
            when observed_t.observed_variance = 0 and observed_t.delta_sum != 0
                then 'infinity'::double
        end as observed_abs_t
    from observed_t
),

head_counts as (
    select
        flipped.tag,
        flipped.model,
        flipped.layer,
        flipped.head,
        count(*) as n_as_extreme
    from flipped
    inner join summaries
        on summaries.tag = flipped.tag
        and summaries.model = flipped.model
        and summaries.layer = flipped.layer
        and summaries.head = flipped.head
    where abs(flipped.flipped_sum) >= abs(summaries.delta_sum) - 1e-12
    group by flipped.tag, flipped.model, flipped.layer, flipped.head
),

fwer_counts as (
    select
        observed_abs_t.tag,
        observed_abs_t.model,
        observed_abs_t.layer,
        observed_abs_t.head,
        count(max_t.permutation) as n_as_extreme
    from observed_abs_t
    inner join max_t
        on max_t.tag = observed_abs_t.tag
        and max_t.model = observed_abs_t.model
    where max_t.max_abs_t >= observed_abs_t.observed_abs_t - 1e-9
    group by observed_abs_t.tag, observed_abs_t.model, observed_abs_t.layer, observed_abs_t.head
)

select
    observed_abs_t.tag,
    observed_abs_t.model,
    observed_abs_t.layer,
    observed_abs_t.head,
    observed_abs_t.n_rollouts,
    observed_abs_t.mean_delta_va_vert,
    observed_abs_t.sd_delta_va_vert,
    observed_abs_t.mean_delta_va_vert
    / nullif(observed_abs_t.sd_delta_va_vert / sqrt(observed_abs_t.n_rollouts), 0) as t_statistic,
    case
        when observed_abs_t.mean_delta_va_vert != 0
            then len(list_filter(
                observed_abs_t.delta_by_rollout,
                lambda x: sign(x) = sign(observed_abs_t.mean_delta_va_vert)
            )) / observed_abs_t.n_rollouts::double
    end as share_same_sign,
    permutations::integer as permutations,
    (1 + coalesce(head_counts.n_as_extreme, 0)) / (1 + permutations)::double as p_value,
    case
        when observed_abs_t.observed_abs_t is not null
            then (1 + coalesce(fwer_counts.n_as_extreme, 0)) / (1 + permutations)::double
    end as p_value_fwer
from observed_abs_t
left join head_counts
    on head_counts.tag = observed_abs_t.tag
    and head_counts.model = observed_abs_t.model
    and head_counts.layer = observed_abs_t.layer
    and head_counts.head = observed_abs_t.head
left join fwer_counts
    on fwer_counts.tag = observed_abs_t.tag
    and fwer_counts.model = observed_abs_t.model
    and fwer_counts.layer = observed_abs_t.layer
    and fwer_counts.head = observed_abs_t.head;

create or replace view head_consistency as
select * from head_consistency();
