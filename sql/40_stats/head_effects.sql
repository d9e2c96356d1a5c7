-- Effect size of each head with a confidence interval (docs/STATISTICS.md §8): per (tag,
-- model, layer, head), the mean ΔVA over the rollouts where it is defined and a percentile
-- bootstrap interval over clusters (rollout_deltas: problems, or rollouts when there is
-- one problem). Resample b = 1..resamples draws as many clusters as there are, with
-- replacement: draw j takes cluster number 1 + (hash % n_clusters), hash the integer of
-- the first 15 hex digits of md5('boot/' || seed || '/' || b || '/' || j); the resample's
-- mean is the mean ΔVA over the drawn clusters' rollouts (a cluster drawn twice counts
-- twice). ci_low and ci_high are the (1 - confidence) / 2 and (1 + confidence) / 2
-- quantiles (quantile_cont) of the resampled means.
-- Parameters: tag, all_tags, resamples (B >= 1), confidence, seed, and the ΔVA setting
-- (proximity_ignore, control_depth, score_type, trim, layers, all_layers).
--- tag: target tag
--- model: model name
--- layer: layer index
--- head: query head index
--- n_rollouts: rollouts where the head's ΔVA is defined
--- n_clusters: resampling clusters among them
--- mean_delta_va_vert: mean ΔVA over those rollouts
--- ci_low: lower bound of the bootstrap confidence interval of the mean
--- ci_high: upper bound of the bootstrap confidence interval of the mean
--- resamples: B, the number of bootstrap resamples
create or replace macro head_effects(
    {{ params: tag, all_tags, resamples, confidence, seed, @metric }}
) as table
with deltas as materialized (
    select *
    from
        rollout_deltas({{ pass: tag, all_tags, @metric }})
),

-- the clusters of each (tag, model), numbered 1..n in id order
clusters as (
    select distinct
        deltas.tag,
        deltas.model,
        deltas.cluster_id,
        dense_rank() over (partition by deltas.tag, deltas.model order by deltas.cluster_id) as cluster_number,
        count(distinct deltas.cluster_id) over (partition by deltas.tag, deltas.model) as n_clusters
    from deltas
),

-- per head and cluster: ΔVA sum and count
cluster_sums as (
    select
        deltas.tag,
        deltas.model,
        deltas.layer,
        deltas.head,
        deltas.cluster_id,
        sum(deltas.delta_va_vert) as delta_sum,
        count(*) as n_rollouts
    from deltas
    group by all
),

-- per head: the sums and counts as lists by cluster number (0 where the head has no ΔVA)
heads as (
    select
        head_keys.tag,
        head_keys.model,
        head_keys.layer,
        head_keys.head,
        sum(cluster_sums.n_rollouts) as n_rollouts,
        count(cluster_sums.cluster_id) as n_clusters,
        sum(cluster_sums.delta_sum) / sum(cluster_sums.n_rollouts) as mean_delta_va_vert,
        list(coalesce(cluster_sums.delta_sum, 0) order by clusters.cluster_number) as sums_by_cluster,
        list(coalesce(cluster_sums.n_rollouts, 0)::double order by clusters.cluster_number) as counts_by_cluster
    from (select distinct cluster_sums.tag, cluster_sums.model, cluster_sums.layer, cluster_sums.head from cluster_sums)
        as head_keys
    inner join clusters using (tag, model)
    left join cluster_sums using (tag, model, layer, head, cluster_id)
    group by all
),

-- per (tag, model) and resample: how often each cluster is drawn, as a list by cluster number
multiplicities as (
    select
        draws.tag,
        draws.model,
        draws.resample,
        list_transform(
            range(1, any_value(draws.n_clusters) + 1),
            lambda k: len(list_filter(list(draws.drawn), lambda d: d = k))::double
        ) as drawn_by_cluster
    from (
        select
            sizes.tag,
            sizes.model,
            sizes.n_clusters,
            resampled.resample,
            1 + hash_draw(seed, resampled.resample, picked.draw) % sizes.n_clusters as drawn
        from (select distinct clusters.tag, clusters.model, clusters.n_clusters from clusters) as sizes
        cross join range(1, greatest(resamples, 1) + 1) as resampled(resample)
        cross join lateral range(1, sizes.n_clusters + 1) as picked(draw)
    ) as draws
    group by draws.tag, draws.model, draws.resample
),

resampled_means as (
    select
        heads.tag,
        heads.model,
        heads.layer,
        heads.head,
        list_dot_product(multiplicities.drawn_by_cluster, heads.sums_by_cluster)
        / nullif(list_dot_product(multiplicities.drawn_by_cluster, heads.counts_by_cluster), 0) as resampled_mean
    from heads
    inner join multiplicities using (tag, model)
),

intervals as (
    select
        resampled_means.tag,
        resampled_means.model,
        resampled_means.layer,
        resampled_means.head,
        quantile_cont(resampled_means.resampled_mean, (1 - confidence) / 2) as ci_low,
        quantile_cont(resampled_means.resampled_mean, (1 + confidence) / 2) as ci_high
    from resampled_means
    group by all
)

select
    heads.tag,
    heads.model,
    heads.layer,
    heads.head,
    heads.n_rollouts,
    heads.n_clusters,
    heads.mean_delta_va_vert,
    intervals.ci_low,
    intervals.ci_high,
    resamples::integer as resamples
from heads
inner join intervals using (tag, model, layer, head);

create or replace view head_effects as
select * from head_effects();
