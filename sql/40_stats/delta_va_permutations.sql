-- ΔVA under the observed labels (permutation 0) and under each seeded label permutation
-- (docs/STATISTICS.md §2-3), per (tag, model, rollout, layer, head, permutation).
-- The vertical scores v_c do not depend on the labels (METRICS.md §5), so only the group
-- means of §6 change: with S = Σ v_c over the n_scored scored columns and T the sum over
-- the t target columns, ΔVA = T / t - (S - T) / (n_scored - t). Permutation k moves the
-- t targets to the first t columns of column_permutations (same count, same rollout).
-- Rows exist only where ΔVA is defined (0 < t < n_scored, v_c defined; dense triangles).
-- Parameters: tag, all_tags (every tag present; see analysed_tags), permutations (K >= 0),
-- seed, and those of head_stats (proximity_ignore, control_depth, score_type, trim,
-- layers, all_layers), with the same defaults (the notebook's setting).
--- tag: target tag
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- permutation: 0 = the observed labels, 1..permutations = permuted labels
--- delta_va_vert: ΔVA under that labelling
create or replace macro delta_va_permutations(
    tag := 'verbalized_evaluation_awareness',
    all_tags := false,
    permutations := 1000,
    seed := 0,
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
            tag := null,
            proximity_ignore := proximity_ignore,
            control_depth := control_depth,
            score_type := score_type,
            trim := trim,
            layers := layers,
            all_layers := all_layers
        ) as vert
    group by vert.model, vert.rollout_id, vert.layer, vert.head
),

-- scored columns (c <= n - 1 - p) and their labels, per tag
labels as (
    select
        tags.tag as target_tag,
        tags.rollout_id,
        tags.r as c,
        tags.is_target,
        count(*) over tag_rollout as n_scored,
        count(*) filter (where tags.is_target) over tag_rollout as n_target
    from analysed_tags(tag := tag, all_tags := all_tags, trim := trim) as tags
    where tags.r <= tags.n_sentences - 1 - proximity_ignore
    window tag_rollout as (partition by tags.tag, tags.rollout_id)
),

-- the smaller side of the split is summed: the targets when t <= n_scored - t, else
-- the others (their sum is S - T)
tag_counts as (
    select distinct
        labels.target_tag,
        labels.rollout_id,
        labels.n_scored,
        labels.n_target,
        labels.n_target <= labels.n_scored - labels.n_target as sums_targets
    from labels
    where labels.n_target > 0 and labels.n_target < labels.n_scored
),

observed_sides as (
    select
        tag_counts.target_tag,
        tag_counts.rollout_id,
        0 as permutation,
        list(labels.c + 1 order by labels.c) filter (
            where labels.is_target = tag_counts.sums_targets
        ) as side_columns
    from tag_counts
    inner join labels
        on labels.target_tag = tag_counts.target_tag
        and labels.rollout_id = tag_counts.rollout_id
    group by tag_counts.target_tag, tag_counts.rollout_id
),

orders as (
    select *
    from column_permutations(
        permutations := permutations,
        seed := seed,
        proximity_ignore := proximity_ignore,
        trim := trim
    )
),

permuted_sides as (
    select
        tag_counts.target_tag,
        tag_counts.rollout_id,
        orders.permutation,
        list(orders.c + 1 order by orders.c) filter (
            where (orders.position <= tag_counts.n_target) = tag_counts.sums_targets
        ) as side_columns
    from tag_counts
    inner join orders on orders.rollout_id = tag_counts.rollout_id
    group by tag_counts.target_tag, tag_counts.rollout_id, orders.permutation
),

sides as (
    select
        all_sides.*,
        tag_counts.n_scored,
        tag_counts.n_target,
        tag_counts.sums_targets
    from (
        select * from observed_sides
        union all
        select * from permuted_sides
    ) as all_sides
    inner join tag_counts
        on tag_counts.target_tag = all_sides.target_tag
        and tag_counts.rollout_id = all_sides.rollout_id
),

target_sums as (
    select
        sides.target_tag,
        scores.model,
        scores.rollout_id,
        scores.layer,
        scores.head,
        sides.permutation,
        sides.n_scored,
        sides.n_target,
        scores.score_sum,
        case
            when sides.sums_targets
                then list_sum(list_select(scores.scores_by_column, sides.side_columns))
            else scores.score_sum - list_sum(list_select(scores.scores_by_column, sides.side_columns))
        end as target_sum
    from sides
    inner join scores
        on scores.rollout_id = sides.rollout_id
        and scores.n_defined = sides.n_scored
)

select
    target_sums.target_tag as tag,
    target_sums.model,
    target_sums.rollout_id,
    target_sums.layer,
    target_sums.head,
    target_sums.permutation,
    target_sums.target_sum / target_sums.n_target
    - (target_sums.score_sum - target_sums.target_sum)
    / (target_sums.n_scored - target_sums.n_target) as delta_va_vert
from target_sums;

create or replace view delta_va_permutations as
select * from delta_va_permutations();
