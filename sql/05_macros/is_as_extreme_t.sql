-- As is_as_extreme for t statistics (docs/STATISTICS.md §6), whose rounding error is
-- larger: stat >= observed - 1e-9.
create or replace macro is_as_extreme_t(stat, observed) as stat >= observed - 1e-9;
