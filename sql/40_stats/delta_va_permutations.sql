-- ΔVA under the observed labels (permutation 0) and under each of the null's labellings
-- (docs/STATISTICS.md §2-3), per (tag, model, rollout, layer, head, permutation).
-- The vertical scores v_c do not depend on the labels (METRICS.md §5), so only the group
-- means of §6 change: with S = Σ v_c over the n_scored scored columns and T the sum over
-- the t target columns, ΔVA = T / t - (S - T) / (n_scored - t). Each labelling comes from
-- label_permutations (same count t, same rollout, same count in every stratum).
-- excess_delta_va, the statistic of every test, is ΔVA computed on residual scores: under
-- null 'position', v_c minus its stratum's mean (null_strata) and minus the least-squares
-- fit on position c and log sentence length pooled over the strata of the rollout, layer
-- and head (two slopes), so that neither the strata's levels nor a trend with position or
-- length inside them can separate the labels (two pooled slopes cost the effect far less
-- than a fit per stratum, §2), scaled by the variance model of the rollout and layer
-- (late columns average fewer rows and are noisier); under null 'uniform', v_c itself
-- (excess_delta_va = delta_va_vert, the earlier test).
-- delta_va_vert (the notebook's ΔVA on v_c) is computed for permutation 0 only.
-- Rows exist only where ΔVA is defined (0 < t < n_scored, v_c defined; dense triangles).
-- Parameters: tag, all_tags (every tag present; see analysed_tags), permutations (K >= 0),
-- seed, null_model, exact, and those of head_stats (proximity_ignore, control_depth,
-- score_type, trim, layers, all_layers), with the same defaults (the notebook's setting);
-- only_rollouts (NULL: every rollout; a list of ids: those rollouts alone, the same rows as
-- the unscoped call gives for them, since every statistic here is within one rollout).
--- tag: target tag
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- permutation: 0 = the observed labels, 1..n_draws = the null's labellings
--- delta_va_vert: ΔVA under the observed labels (NULL for permutation > 0)
--- excess_delta_va: ΔVA of that labelling on the residual scores (the test statistic)
create or replace macro delta_va_permutations({{ params: tag, all_tags, @null, @metric, only_rollouts }}) as table
-- v_c and the residual score of every analysed column as lists indexed by c + 1 (NULL
-- where undefined), and their sums and the count of defined ones, per (model, rollout,
-- layer, head)
with centred as (
    select
        vert.*,
        vert.vertical_score - avg(vert.vertical_score) over stratum_window as score_in_stratum,
        vert.c - avg(vert.c) over stratum_window as c_in_stratum,
        strata.log_length - avg(strata.log_length) over stratum_window as length_in_stratum
    from
        vertical_scores(tag := null, {{ pass: @metric, only_rollouts }}) as vert
    left join
        null_strata({{ pass: null_model, proximity_ignore, trim, only_rollouts }}) as strata
        on strata.rollout_id = vert.rollout_id and strata.c = vert.c
    window stratum_window as (partition by vert.model, vert.rollout_id, vert.layer, vert.head, strata.stratum)
),

-- the within-strata cross products of the two regressors (c, log length) and the score,
-- per head and rollout, pooled over its strata (columns without a score add nothing)
moments as (
    select
        centred.*,
        sum(centred.c_in_stratum * centred.c_in_stratum) filter (
            where centred.score_in_stratum is not null
        ) over head_window as cc,
        sum(centred.length_in_stratum * centred.length_in_stratum) filter (
            where centred.score_in_stratum is not null
        ) over head_window as ll,
        sum(centred.c_in_stratum * centred.length_in_stratum) filter (
            where centred.score_in_stratum is not null
        ) over head_window as cl,
        sum(centred.c_in_stratum * centred.score_in_stratum) over head_window as cv,
        sum(centred.length_in_stratum * centred.score_in_stratum) over head_window as lv
    from centred
    window head_window as (partition by centred.model, centred.rollout_id, centred.layer, centred.head)
),

-- the 2 x 2 normal equations of the pooled least squares: both slopes when they are well
-- posed; c alone when the centred lengths are 0 (no texts) or collinear with c; none
-- when every stratum has one column
systems as (
    select
        moments.*,
        moments.cc * moments.ll - moments.cl * moments.cl as det,
        moments.cc * moments.ll - moments.cl * moments.cl > 1e-9 * moments.cc * moments.ll as both_slopes
    from moments
),

slopes as (
    select
        systems.*,
        case
            when systems.both_slopes then (systems.ll * systems.cv - systems.cl * systems.lv) / systems.det
            when systems.cc > 0 then systems.cv / systems.cc
            else 0
        end as slope_c,
        case
            when systems.both_slopes then (systems.cc * systems.lv - systems.cl * systems.cv) / systems.det
            else 0
        end as slope_length
    from systems
),

-- the residual r_c of the pooled fit, and its squared size relative to the head's mean
-- (the variance model below shares a shape over the heads of a layer, not a scale)
residuals as (
    select
        with_residual.*,
        with_residual.residual * with_residual.residual
            / nullif(avg(with_residual.residual * with_residual.residual) over head_window, 0) as relative_square
    from (
        select
            slopes.*,
            slopes.score_in_stratum - slopes.slope_c * slopes.c_in_stratum
                - slopes.slope_length * slopes.length_in_stratum as residual
        from slopes
    ) as with_residual
    window head_window as (
        partition by with_residual.model, with_residual.rollout_id, with_residual.layer, with_residual.head
    )
),

-- the variance model var(r_c) = a + b / n_valid_rows_c of a rollout and layer: b is the
-- noise that averaging more rows removes, a the spread every column keeps. Fitted as
-- the least-squares line of n_valid_rows_c r_c² (relative) on n_valid_rows_c over the
-- scored columns of all the layer's heads: intercept b, slope a
variance_moments as (
    select
        residuals.*,
        count(residuals.relative_square) over layer_window as n_fit,
        sum(residuals.n_valid_rows) filter (where residuals.relative_square is not null) over layer_window as sw,
        sum(residuals.n_valid_rows::double * residuals.n_valid_rows) filter (
            where residuals.relative_square is not null
        ) over layer_window as sww,
        sum(residuals.n_valid_rows * residuals.relative_square) over layer_window as sz,
        sum(residuals.n_valid_rows * residuals.n_valid_rows * residuals.relative_square) over layer_window as swz
    from residuals
    window layer_window as (partition by residuals.model, residuals.rollout_id, residuals.layer)
),

-- slope a, then intercept b (a = 0 when every column has as many rows)
variance_slopes as (
    select
        variance_moments.*,
        coalesce(
            (variance_moments.n_fit * variance_moments.swz - variance_moments.sw * variance_moments.sz)
            / nullif(variance_moments.n_fit * variance_moments.sww - variance_moments.sw * variance_moments.sw, 0),
            0
        ) as variance_a
    from variance_moments
),

variance_fits as (
    select
        variance_slopes.*,
        (variance_slopes.sz - variance_slopes.variance_a * variance_slopes.sw) / variance_slopes.n_fit as variance_b
    from variance_slopes
),

-- the factor that scales r_c to the variance of a one-row column: sqrt((a + b) / (a + b /
-- n_valid_rows)); b <= 0: 1 (one variance for every column); a <= 0: sqrt(n_valid_rows)
fitted as (
    select
        variance_fits.*,
        case
            when null_model = 'uniform' then variance_fits.vertical_score
            when variance_fits.variance_b <= 0 then variance_fits.residual
            when variance_fits.variance_a <= 0 then variance_fits.residual * sqrt(variance_fits.n_valid_rows)
            else variance_fits.residual * sqrt(
                (variance_fits.variance_a + variance_fits.variance_b) * variance_fits.n_valid_rows
                / (variance_fits.variance_a * variance_fits.n_valid_rows + variance_fits.variance_b)
            )
        end as residual_score
    from variance_fits
),

scores as materialized (
    select
        fitted.model,
        fitted.rollout_id,
        fitted.layer,
        fitted.head,
        list(fitted.vertical_score order by fitted.c) as scores_by_column,
        list(fitted.residual_score order by fitted.c) as residuals_by_column,
        sum(fitted.vertical_score) as score_sum,
        sum(fitted.residual_score) as residual_sum,
        count(fitted.vertical_score) as n_defined
    from fitted
    group by fitted.model, fitted.rollout_id, fitted.layer, fitted.head
),

counts as (
    select *
    from
        labelling_counts(
            {{ pass: tag, all_tags, permutations, null_model, exact, proximity_ignore, trim, only_rollouts }}
        )
),

sides as (
    select *
    from
        label_permutations(
            {{ pass: tag, all_tags, @null, proximity_ignore, trim, only_rollouts }}
        )
),

heads as materialized (
    select
        counts.tag,
        counts.n_scored,
        counts.n_target,
        counts.sums_targets,
        scores.*
    from counts
    inner join scores
        on scores.rollout_id = counts.rollout_id
        and scores.n_defined = counts.n_scored
),

-- the sum over the targets of the residual scores: of the side's, or the total minus the
-- side's; the raw scores' sum (for delta_va_vert) only for the observed labels, so the
-- permuted rows never carry the raw list
target_sums as (
    select
        heads.tag,
        heads.model,
        heads.rollout_id,
        heads.layer,
        heads.head,
        heads.n_scored,
        heads.n_target,
        heads.residual_sum,
        sides.permutation,
        side_sum(heads.residuals_by_column, sides.side_columns, heads.sums_targets, heads.residual_sum)
            as residual_target_sum
    from sides
    inner join heads using (tag, rollout_id)
),

observed_sums as (
    select
        side_sum(heads.scores_by_column, sides.side_columns, heads.sums_targets, heads.score_sum)
            as target_sum,
        heads.score_sum,
        heads.tag,
        heads.model,
        heads.rollout_id,
        heads.layer,
        heads.head
    from sides
    inner join heads using (tag, rollout_id)
    where sides.permutation = 0
)

select
    target_sums.tag,
    target_sums.model,
    target_sums.rollout_id,
    target_sums.layer,
    target_sums.head,
    target_sums.permutation,
    group_delta(observed_sums.target_sum, observed_sums.score_sum, target_sums.n_target, target_sums.n_scored)
        as delta_va_vert,
    group_delta(
        target_sums.residual_target_sum, target_sums.residual_sum, target_sums.n_target, target_sums.n_scored
    ) as excess_delta_va
from target_sums
left join observed_sums
    on target_sums.permutation = 0
    and observed_sums.tag = target_sums.tag
    and observed_sums.model = target_sums.model
    and observed_sums.rollout_id = target_sums.rollout_id
    and observed_sums.layer = target_sums.layer
    and observed_sums.head = target_sums.head;

create or replace view delta_va_permutations as
select * from delta_va_permutations();
