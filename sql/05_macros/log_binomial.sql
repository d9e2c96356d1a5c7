-- ln C(n, k), the log of the number of ways to choose k of n (0 <= k <= n), for counting
-- distinct labellings (docs/STATISTICS.md §2) without overflow: sum the logs of the strata.
create or replace macro log_binomial(n, k) as lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1);
