-- The Benjamini-Hochberg q-value of p (docs/STATISTICS.md §9): the smallest bh_step over the
-- family's p-values >= p, capped at 1. Window functions do not nest, so the query computes
-- p_rank = bh_rank(p, family) and family_size = count(*) over (partition by family) first.
create or replace macro bh_q_value(p, p_rank, family_size, family) as
    least(1, min(bh_step(p, p_rank, family_size)) over (
        partition by family order by p desc range between unbounded preceding and current row
    ));
