-- The receiver heads of METRICS.md §8 with the paper's setting (receiver_heads: kurtosis of
-- the vertical scores, proximity_ignore 4, control_depth false, no trim, every layer; the
-- top k by mean kurtosis over rollouts) and the ΔVA of those heads across rollouts
-- (head_consistency, computed with the notebook's ΔVA setting unless told otherwise).
-- Answers: do the heads that receive the most focused attention also prefer target
-- sentences? p_value_fwer is the max-T p-value over every head of the chosen layers
-- (default: all), so it stays valid however the k heads were picked.
-- This macro is receiver_head_delta_va_of over head_consistency.
-- Parameters: k (default 20); tag, all_tags, permutations, seed, null_model; proximity_ignore,
-- control_depth, score_type, trim, layers, all_layers: the ΔVA setting (as head_consistency).
--- tag: target tag
--- model: model name
--- rank: receiver-head rank, 1 = highest mean kurtosis
--- layer: layer index
--- head: query head index
--- mean_kurtosis: mean over rollouts of the head's kurtosis (paper's setting)
--- n_rollouts_kurtosis: rollouts with a defined kurtosis for this head
--- n_rollouts: rollouts where the head's ΔVA is defined
--- mean_delta_va_vert: mean ΔVA over those rollouts
--- sd_delta_va_vert: sample standard deviation of ΔVA (n - 1)
--- t_statistic: mean / (sd / sqrt(n))
--- share_same_sign: share of rollouts whose ΔVA has the sign of the mean
--- permutations: K, the number of permutations (or sign flips) drawn
--- p_value: two-sided permutation p-value of the mean ΔVA of this head (head_consistency)
--- p_value_fwer: family-wise (max-T over every head of the chosen layers) p-value
create or replace macro receiver_head_delta_va(
    {{ params: k, tag, all_tags, permutations, seed, null_model, @metric }}
) as table
with receiver_consistency as materialized (
    select *
    from
        head_consistency(
            {{ pass: tag, all_tags, permutations, seed, null_model, @metric }}
        )
),

receiver_rows as materialized (
    select *
    from receiver_heads({{ pass: k }})
)

select *
from receiver_head_delta_va_of(consistency := 'receiver_consistency', receivers := 'receiver_rows');

create or replace view receiver_head_delta_va as
select * from receiver_head_delta_va();
