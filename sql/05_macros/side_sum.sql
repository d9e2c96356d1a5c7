-- The sum of a labelling's target columns from the side label_permutations lists
-- (docs/STATISTICS.md §2): the side's sum when it lists the targets (sums_targets), else
-- the total minus the side's (the side lists the others, the smaller side).
create or replace macro side_sum(values_by_column, side_columns, sums_targets, total) as
    case when sums_targets then 1 else -1 end
    * list_sum(list_select(values_by_column, side_columns))
    + case when sums_targets then 0 else total end;
