-- One Benjamini-Hochberg step (docs/STATISTICS.md §9): m p / rank, where rank counts the
-- p-values of the family that are <= p (ties share the highest rank) and m is the family
-- size. The q-value is the smallest step over p-values >= p, capped at 1:
--     least(1, min(bh_step(p, rank, m)) over (partition by family order by p desc
--                                             range between unbounded preceding and current row))
create or replace macro bh_step(p, rank, m) as p * m / rank::double;
