-- One Benjamini-Hochberg step (docs/STATISTICS.md §9): m p / rank, where rank counts the
-- family's p-values <= p (ties share the highest rank) and m is the family size. The
-- q-value is the smallest step over the p-values >= p, capped at 1; two window passes:
--     count(*) over (partition by family order by p range between unbounded preceding
--                    and current row) as p_rank, count(*) over (partition by family) as m
--     least(1, min(bh_step(p, p_rank, m)) over (partition by family order by p desc
--                    range between unbounded preceding and current row)) as q_value
create or replace macro bh_step(p, p_rank, family_size) as p * family_size / p_rank::double;
