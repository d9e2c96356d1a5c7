-- The labellings each permutation test compares (docs/STATISTICS.md §2), per (tag,
-- rollout, permutation): permutation 0 is the observed labelling; 1..n_draws are the
-- null's labellings (labelling_counts): sampled, the first t_s columns of each stratum in
-- column_permutations' order; or, when is_exact, every distinct labelling once, numbered
-- in mixed radix over the strata (the combinations of each stratum in ascending list
-- order, stratum 0 varying fastest).
-- side_columns: the columns (list of c + 1, ascending) whose scores the permutation sums:
-- the targets when sums_targets, else the others (the smaller side; S - T gives the rest).
-- Parameters: tag, all_tags, permutations, seed, null_model, exact, proximity_ignore, trim,
-- only_rollouts.
--- tag: target tag
--- rollout_id: rollout
--- permutation: 0 = the observed labels, 1..n_draws = the null's labellings
--- side_columns: summed columns (c + 1, ascending): targets when sums_targets, else the others
create or replace macro label_permutations(
    {{ params: tag, all_tags, @null, proximity_ignore, trim, only_rollouts }}
) as table
with counts as materialized (
    select *
    from
        labelling_counts(
            {{ pass: tag, all_tags, permutations, null_model, exact, proximity_ignore, trim, only_rollouts }}
        )
),

labels as materialized (
    select labels.*
    from
        scored_labels(
            {{ pass: tag, all_tags, null_model, proximity_ignore, trim, only_rollouts }}
        ) as labels
    semi join counts using (tag, rollout_id)
),

observed as (
    select
        labels.tag,
        labels.rollout_id,
        0 as permutation,
        labels.c,
        labels.is_target
    from labels
),

sampled as (
    select
        counts.tag,
        counts.rollout_id,
        orders.permutation,
        orders.c,
        orders.position <= counts.stratum_targets[orders.stratum] as is_target
    from
        column_permutations(
            {{ pass: permutations, seed, null_model, proximity_ignore, trim, only_rollouts }}
        ) as orders
    inner join counts using (rollout_id)
    where not counts.is_exact
),

-- exact: the t_s-subsets of each stratum with 0 < t_s < n_s, as lists of columns
members as (
    select
        labels.tag,
        labels.rollout_id,
        labels.stratum,
        list(labels.c order by labels.c) as columns,
        count(*) filter (where labels.is_target) as n_chosen
    from labels
    inner join counts using (tag, rollout_id)
    where counts.is_exact
    group by labels.tag, labels.rollout_id, labels.stratum
),

subsets as (
    with recursive grown(tag, rollout_id, stratum, chosen) as (
        select
            members.tag,
            members.rollout_id,
            members.stratum,
            []::integer[]
        from members
        where members.n_chosen > 0 and members.n_chosen < len(members.columns)
        union all
        select
            grown.tag,
            grown.rollout_id,
            grown.stratum,
            list_append(grown.chosen, next_position.position::integer)
        from grown
        inner join members using (tag, rollout_id, stratum)
        cross join
            unnest(
                range(
                    coalesce(list_last(grown.chosen), 0) + 1,
                    len(members.columns) - (members.n_chosen - len(grown.chosen)) + 2
                )
            ) as next_position(position)
        where len(grown.chosen) < members.n_chosen
    )

    select
        grown.tag,
        grown.rollout_id,
        grown.stratum,
        list_select(members.columns, grown.chosen) as chosen_columns,
        (row_number() over stratum_window - 1)::bigint as subset_index,
        count(*) over stratum_window as n_subsets
    from grown
    inner join members using (tag, rollout_id, stratum)
    where len(grown.chosen) = members.n_chosen
    window stratum_window as (
        partition by grown.tag, grown.rollout_id, grown.stratum
        order by grown.chosen
        rows between unbounded preceding and unbounded following
    )
),

-- mixed radix: the product of the subset counts of the strata before this one
radices as (
    select
        strata.*,
        coalesce(
            product(strata.n_subsets) over (
                partition by strata.tag, strata.rollout_id
                order by strata.stratum
                rows between unbounded preceding and 1 preceding
            ),
            1
        )::bigint as radix
    from (
        select distinct subsets.tag, subsets.rollout_id, subsets.stratum, subsets.n_subsets from subsets
    ) as strata
),

enumerated_targets as (
    select
        counts.tag,
        counts.rollout_id,
        draws.permutation,
        coalesce(flatten(list(subsets.chosen_columns) filter (where subsets.chosen_columns is not null)), [])
            as targets
    from counts
    cross join unnest(range(1, counts.n_draws + 1)) as draws(permutation)
    left join radices using (tag, rollout_id)
    left join subsets
        on subsets.tag = radices.tag
        and subsets.rollout_id = radices.rollout_id
        and subsets.stratum = radices.stratum
        and subsets.subset_index = ((draws.permutation - 1) // radices.radix) % radices.n_subsets
    where counts.is_exact
    group by counts.tag, counts.rollout_id, draws.permutation
),

enumerated as (
    select
        labels.tag,
        labels.rollout_id,
        enumerated_targets.permutation,
        labels.c,
        list_contains(enumerated_targets.targets, labels.c)
        or members.n_chosen = len(members.columns) as is_target
    from enumerated_targets
    inner join labels using (tag, rollout_id)
    inner join members using (tag, rollout_id, stratum)
),

labellings as (
    select * from observed
    union all
    select * from sampled
    union all
    select * from enumerated
)

select
    labellings.tag,
    labellings.rollout_id,
    labellings.permutation,
    coalesce(
        list(labellings.c + 1 order by labellings.c) filter (
            where labellings.is_target = counts.sums_targets
        ),
        []
    ) as side_columns
from labellings
inner join counts using (tag, rollout_id)
group by labellings.tag, labellings.rollout_id, labellings.permutation;

create or replace view label_permutations as
select * from label_permutations();
