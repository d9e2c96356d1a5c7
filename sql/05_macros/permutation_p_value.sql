-- The p-value of a permutation test (docs/STATISTICS.md §2), written once for every
-- statistic of sql/40_stats. n_as_extreme counts the draws k >= 1 at least as extreme as
-- the observation (is_as_extreme); n_draws is K (sampled draws) or L (every labelling).
--   sampled (exact false): (1 + n_as_extreme) / (1 + K); never 0, at least 1 / (1 + K),
--                          1 when K = 0 (the observation counts as one draw);
--   exact (exact true):    n_as_extreme / L; the observed labelling is one of the L, so it
--                          is at least 1 / L.
create or replace macro permutation_p_value(n_as_extreme, n_draws, exact) as
    case
        when exact then n_as_extreme / n_draws::double
        else (1 + n_as_extreme) / (1 + n_draws)::double
    end;
