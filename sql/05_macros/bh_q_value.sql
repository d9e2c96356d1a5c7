-- The Benjamini-Hochberg q-value of p in its family (docs/STATISTICS.md §9), given the
-- family's p-values sorted ascending (sorted_p, e.g. list(p order by p) over the family):
-- q = min(1, min_{j >= i} m s_j / j), s the sorted list, m its length and i the first
-- position of p in it (a tie's last position carries its rank, count of p-values <= s_j).
-- NULL when p is NULL. Controls the false discovery rate at q for independent or
-- positively dependent tests.
create or replace macro bh_q_value(p, sorted_p) as
    least(
        1,
        list_min(
            list_transform(
                list_slice(sorted_p, list_position(sorted_p, p), len(sorted_p)),
                lambda s, j: len(sorted_p) * s / (j + list_position(sorted_p, p) - 1)
            )
        )
    );
