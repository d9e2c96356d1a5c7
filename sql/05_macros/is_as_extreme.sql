-- A permuted statistic counts as "at least as extreme" as the observed one within float
-- noise (docs/STATISTICS.md §2): stat >= observed - 1e-12, both already made >= 0.
create or replace macro is_as_extreme(stat, observed) as stat >= observed - 1e-12;
