-- The number of permutations K, checked: an integer >= 0 (docs/STATISTICS.md §2), else an
-- error naming the rule.
create or replace macro checked_permutations(permutations) as
    case
        when permutations is null or permutations < 0
            then error('permutations must be an integer >= 0 (docs/STATISTICS.md §2)')
        else permutations
    end;
