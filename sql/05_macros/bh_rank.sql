-- The rank of a p-value in its family for a Benjamini-Hochberg step (bh_step): how many of
-- the family's p-values are <= p (ties share the highest rank). family: the partition key
-- (a column, or a list of columns).
create or replace macro bh_rank(p, family) as
    count(*) over (partition by family order by p range between unbounded preceding and current row);
