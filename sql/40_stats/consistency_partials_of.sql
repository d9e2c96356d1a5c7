-- What a set of whole problems contributes to head_consistency's 'position' statistic
-- (docs/STATISTICS.md §6), over the rows of a relation named by draws (a table, view or
-- CTE with consistency_draws' columns): per (tag, model, layer, head, draw k) the sum over
-- the problems of M_k's terms (each problem's mean excess ΔVA over its rollouts) and their
-- number. Partials of disjoint sets of problems add up, so M_k = Σ sums / Σ counts over
-- any split of the problems: head_consistency_of reads partials, and a report keeps one
-- per bucket of problems, so a changed rollout recomputes its bucket's part alone.
-- Parameters: draws (relation name, default the view consistency_draws).
--- tag: target tag
--- model: model name
--- layer: layer index
--- head: query head index
--- permutation: 0 = the observed labels, 1..K = the null's draws
--- problem_mean_sum: Σ over the problems of the mean excess ΔVA of the problem's rollouts
--- n_problems: problems with a row for this head and draw
create or replace macro consistency_partials_of({{ params: draws }}) as table
with problem_means as (
    select
        deltas.tag,
        deltas.model,
        deltas.layer,
        deltas.head,
        deltas.permutation,
        avg(deltas.excess_delta_va) as problem_mean
    from query_table(draws) as deltas
    group by deltas.tag, deltas.model, deltas.layer, deltas.head, deltas.permutation, deltas.cluster_id
)

select
    problem_means.tag,
    problem_means.model,
    problem_means.layer,
    problem_means.head,
    problem_means.permutation,
    sum(problem_means.problem_mean) as problem_mean_sum,
    count(*) as n_problems
from problem_means
group by problem_means.tag, problem_means.model, problem_means.layer, problem_means.head, problem_means.permutation;

create or replace view consistency_partials_of as
select * from consistency_partials_of();
