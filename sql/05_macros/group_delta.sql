-- ΔVA from sums (METRICS.md §6, docs/STATISTICS.md §1): the mean over the t targets minus
-- the mean over the other n - t scored columns, given the targets' sum T and the total S:
-- T / t - (S - T) / (n - t).
create or replace macro group_delta(target_sum, total_sum, n_target, n_scored) as
    target_sum / n_target - (total_sum - target_sum) / (n_scored - n_target);
