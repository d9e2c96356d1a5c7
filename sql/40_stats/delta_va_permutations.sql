-- ΔVA under the observed labels (permutation 0) and under each of the null's labellings
-- (docs/STATISTICS.md §2-3), per (tag, model, rollout, layer, head, permutation).
-- The vertical scores v_c do not depend on the labels (METRICS.md §5), so only the group
-- means of §6 change: with S = Σ v_c over the n_scored scored columns and T the sum over
-- the t target columns, ΔVA = T / t - (S - T) / (n_scored - t). Each labelling comes from
-- label_permutations (same count t, same rollout, same strata counts); excess_delta_va
-- subtracts ΔVA's mean over the null's labellings, Σ_c w_c v_c (labelling_counts; 0 for
-- null 'uniform'), so that |excess_delta_va| is the two-sided statistic of every test.
-- Rows exist only where ΔVA is defined (0 < t < n_scored, v_c defined; dense triangles).
-- Parameters: tag, all_tags (every tag present; see analysed_tags), permutations (K >= 0),
-- seed, null_model, exact, and those of head_stats (proximity_ignore, control_depth,
-- score_type, trim, layers, all_layers), with the same defaults (the notebook's setting).
--- tag: target tag
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- permutation: 0 = the observed labels, 1..n_draws = the null's labellings
--- delta_va_vert: ΔVA under that labelling
--- excess_delta_va: ΔVA minus its mean under the null (what position and length explain)
create or replace macro delta_va_permutations(
    tag := 'verbalized_evaluation_awareness',
    all_tags := false,
    permutations := 1000,
    seed := 0,
    null_model := 'position',
    exact := true,
    proximity_ignore := 4,
    control_depth := true,
    score_type := 'mean',
    trim := true,
    layers := null,
    all_layers := false
) as table
-- v_c of every analysed column as a list indexed by c + 1 (NULL where undefined), and the
-- sum S and count of the defined ones: one row per (model, rollout, layer, head)
with scores as materialized (
    select
        vert.model,
        vert.rollout_id,
        vert.layer,
        vert.head,
        list(vert.vertical_score order by vert.c) as scores_by_column,
        sum(vert.vertical_score) as score_sum,
        count(vert.vertical_score) as n_defined
    from
        vertical_scores(
            tag := null, proximity_ignore := proximity_ignore, control_depth := control_depth,
            score_type := score_type, trim := trim, layers := layers, all_layers := all_layers
        ) as vert
    group by vert.model, vert.rollout_id, vert.layer, vert.head
),

counts as (
    select *
    from
        labelling_counts(
            tag := tag, all_tags := all_tags, permutations := permutations, null_model := null_model,
            exact := exact, proximity_ignore := proximity_ignore, trim := trim
        )
),

sides as (
    select *
    from
        label_permutations(
            tag := tag, all_tags := all_tags, permutations := permutations, seed := seed,
            null_model := null_model, exact := exact, proximity_ignore := proximity_ignore, trim := trim
        )
),

-- per head and tag: ΔVA's mean over the null's labellings
heads as materialized (
    select
        counts.tag,
        counts.n_scored,
        counts.n_target,
        counts.sums_targets,
        scores.*,
        list_sum(list_transform(counts.column_weights, lambda weight, i: weight * scores.scores_by_column[i]))
            as null_mean
    from counts
    inner join scores
        on scores.rollout_id = counts.rollout_id
        and scores.n_defined = counts.n_scored
),

target_sums as (
    select
        heads.tag,
        heads.model,
        heads.rollout_id,
        heads.layer,
        heads.head,
        sides.permutation,
        heads.n_scored,
        heads.n_target,
        heads.score_sum,
        heads.null_mean,
        case
            when heads.sums_targets
                then list_sum(list_select(heads.scores_by_column, sides.side_columns))
            else heads.score_sum - list_sum(list_select(heads.scores_by_column, sides.side_columns))
        end as target_sum
    from sides
    inner join heads
        on heads.tag = sides.tag
        and heads.rollout_id = sides.rollout_id
),

deltas as (
    select
        target_sums.*,
        target_sums.target_sum / target_sums.n_target
        - (target_sums.score_sum - target_sums.target_sum)
        / (target_sums.n_scored - target_sums.n_target) as delta_va_vert
    from target_sums
)

select
    deltas.tag,
    deltas.model,
    deltas.rollout_id,
    deltas.layer,
    deltas.head,
    deltas.permutation,
    deltas.delta_va_vert,
    deltas.delta_va_vert - deltas.null_mean as excess_delta_va
from deltas;

create or replace view delta_va_permutations as
select * from delta_va_permutations();
