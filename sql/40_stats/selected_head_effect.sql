-- Split-half estimate of the best head's effect (docs/STATISTICS.md §8), per (tag, model,
-- layer): the clusters of rollout_deltas (problems, or rollouts) are ordered by
-- md5('half/' || seed || '/' || cluster_id) and cut in two halves (the first
-- floor(n / 2) form half A). In each half the best head is the one with the largest
-- |mean ΔVA| over the half's rollouts (best_head_key, ties to the lowest head); its mean
-- ΔVA on the other half, signed by the direction it was selected in, is an estimate of the
-- selected effect that selection cannot inflate. split_half_estimate averages the two
-- directions; in_sample_abs_delta_va is the best head's |mean ΔVA| on all rollouts (the
-- notebook's, inflated by picking the largest of n_heads).
-- Parameters: tag, all_tags, seed, and the ΔVA setting (proximity_ignore, control_depth,
-- score_type, trim, layers, all_layers).
--- tag: target tag
--- model: model name
--- layer: layer index
--- n_clusters: clusters (problems, or rollouts) split into the two halves
--- head_a: best head selected on half A
--- head_b: best head selected on half B
--- holdout_a_on_b: head_a's mean ΔVA on half B, times the sign of its mean on half A
--- holdout_b_on_a: head_b's mean ΔVA on half A, times the sign of its mean on half B
--- split_half_estimate: mean of the two holdout estimates
--- in_sample_abs_delta_va: |mean ΔVA| of the best head over all rollouts (selection-inflated)
create or replace macro selected_head_effect({{ params: tag, all_tags, seed, @metric }}) as table
with deltas as materialized (
    select *
    from
        rollout_deltas({{ pass: tag, all_tags, @metric }})
),

halves as (
    select
        clusters.*,
        case when clusters.cluster_order * 2 <= clusters.n_clusters then 'a' else 'b' end as half
    from (
        select
            keys.*,
            row_number() over cluster_window as cluster_order,
            count(*) over cluster_window as n_clusters
        from (select distinct deltas.tag, deltas.model, deltas.cluster_id from deltas) as keys
        window cluster_window as (
            partition by keys.tag, keys.model
            order by md5('half/' || seed::bigint::varchar || '/' || keys.cluster_id), keys.cluster_id
            rows between unbounded preceding and unbounded following
        )
    ) as clusters
),

-- mean ΔVA of each head on each half and on all rollouts
half_means as (
    select
        deltas.tag,
        deltas.model,
        deltas.layer,
        deltas.head,
        any_value(halves.n_clusters) as n_clusters,
        avg(deltas.delta_va_vert) filter (where halves.half = 'a') as mean_a,
        avg(deltas.delta_va_vert) filter (where halves.half = 'b') as mean_b,
        avg(deltas.delta_va_vert) as mean_all
    from deltas
    inner join halves using (tag, model, cluster_id)
    group by deltas.tag, deltas.model, deltas.layer, deltas.head
),

picked as (
    select
        half_means.tag,
        half_means.model,
        half_means.layer,
        any_value(half_means.n_clusters) as n_clusters,
        arg_max(half_means.head, [best_head_key(half_means.mean_a), -half_means.head])
            filter (where half_means.mean_a is not null) as head_a,
        arg_max(sign(half_means.mean_a) * half_means.mean_b, [best_head_key(half_means.mean_a), -half_means.head])
            filter (where half_means.mean_a is not null) as holdout_a_on_b,
        arg_max(half_means.head, [best_head_key(half_means.mean_b), -half_means.head])
            filter (where half_means.mean_b is not null) as head_b,
        arg_max(sign(half_means.mean_b) * half_means.mean_a, [best_head_key(half_means.mean_b), -half_means.head])
            filter (where half_means.mean_b is not null) as holdout_b_on_a,
        max(abs(half_means.mean_all)) as in_sample_abs_delta_va
    from half_means
    group by half_means.tag, half_means.model, half_means.layer
)

select
    picked.tag,
    picked.model,
    picked.layer,
    picked.n_clusters,
    picked.head_a,
    picked.head_b,
    picked.holdout_a_on_b,
    picked.holdout_b_on_a,
    (picked.holdout_a_on_b + picked.holdout_b_on_a) / 2 as split_half_estimate,
    picked.in_sample_abs_delta_va
from picked;

create or replace view selected_head_effect as
select * from selected_head_effect();
