-- Consistency of ΔVA across rollouts, per (tag, model, layer, head) (docs/STATISTICS.md §6):
-- over the rollouts where the head's ΔVA (METRICS.md §6) is defined, x_1..x_n: the mean,
-- the sample standard deviation (n - 1), t = mean / (sd / sqrt(n)), the share of rollouts
-- whose ΔVA has the sign of the mean, and two permutation p-values, per head (p_value) and
-- family-wise over every head of the model in the chosen layers (p_value_fwer, Westfall-
-- Young max-T), each permutation_p_value(#{k >= 1 : stat_k >= stat_0 - slack}, K, false).
-- null_model 'position' (default): draw k relabels every rollout within its strata
-- (label_permutations, sampled, the same k for every head); the statistic of a head is
-- M_k = the mean over problems (rollouts.problem_id; a rollout without one is its own
-- problem) of the mean over the problem's rollouts of excess ΔVA_k; p_value: |M_k| vs |M_0|
-- (1e-12); p_value_fwer: max_h |M_k(h)| / sd_k(M(h)) vs the head's own (1e-9), sd over
-- k = 1..K. No symmetry of ΔVA is assumed; rollouts of one problem count once together.
-- null_model 'uniform' (the earlier test): sign flips, s_k(r) = +1 if the first hex digit
-- of md5('sign/' || seed || '/' || k || '/' || rollout_id) is 0-7, else -1 (s_0 = +1);
-- p_value: |Σ s_k x| vs |Σ x| (1e-12); p_value_fwer: max_h |t_k(h)| vs |t_0| (1e-9),
-- t_k = m_k / sqrt(v_k / n), m_k = Σ s_k x / n, v_k = (Σ x² - n m_k²) / (n - 1).
-- Default layers: every stored layer (all_layers := true), so "is there a head of this
-- model that attends to target sentences?" is answered by min(p_value_fwer).
-- This macro is consistency_draws (the per-rollout draws) and their consistency_partials_of
-- combined by head_consistency_of.
-- Parameters: tag, all_tags, permutations (K), seed, null_model, proximity_ignore,
-- control_depth, score_type, trim (the notebook's ΔVA setting), layers, all_layers.
--- tag: target tag
--- model: model name
--- layer: layer index
--- head: query head index
--- n_rollouts: rollouts where the head's ΔVA is defined
--- mean_delta_va_vert: mean ΔVA over those rollouts
--- sd_delta_va_vert: sample standard deviation of ΔVA (n - 1); NULL when n < 2
--- t_statistic: mean / (sd / sqrt(n)); NULL when n < 2 or sd = 0
--- share_same_sign: share of those rollouts whose ΔVA has the sign of the mean (0 never counts); NULL when the mean is 0
--- permutations: K, the number of permutations (or sign flips) drawn
--- p_value: two-sided permutation p-value of this head's mean ΔVA (see null_model)
--- p_value_fwer: family-wise (max-T over all heads of the model in the chosen layers) p-value
--- n_problems: problems among those rollouts (clusters of the 'position' statistic)
--- mean_excess_delta_va: M_0, mean over problems of the mean excess ΔVA (ΔVA minus what position and length predict)
--- q_value: Benjamini-Hochberg q-value of p_value over the heads of this tag and model
create or replace macro head_consistency(
    {{ params: tag, all_tags, permutations, seed, null_model, @metric }}
) as table
with head_consistency_draws as materialized (
    select *
    from
        consistency_draws(
            {{ pass: tag, all_tags, permutations, seed, null_model, @metric }}
        )
),

head_consistency_partials as materialized (
    select *
    from consistency_partials_of(draws := 'head_consistency_draws')
)

select *
from
    head_consistency_of(
        draws := 'head_consistency_draws', partials := 'head_consistency_partials',
        {{ pass: permutations, seed, null_model }}
    );

create or replace view head_consistency as
select * from head_consistency();
