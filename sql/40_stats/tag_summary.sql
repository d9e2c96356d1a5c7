-- Every tag side by side (docs/STATISTICS.md §7): per (tag, model), the per-rollout
-- summaries (the notebook's best head per rollout and layer, with its family-wise
-- permutation p-value, selected_head_pvalues) and the across-rollout summaries (the most
-- consistent head, head_consistency), so the target tag can be compared with the others.
-- Tags: with all_tags (the default here) every tag present in sentence_tags, else the tag
-- parameter. A tag with no defined ΔVA in any rollout has no row.
-- Default layers: the representative ones (as the notebook's ranking); pass all_layers
-- := true to search every layer (slower: K permutations x every head).
-- A tag 'placebo:<tag>' is that tag's placebo (scored_labels): the same statistics for as
-- many sentences at matched positions, the baseline beside the real tag (§10).
-- top_q_value_fwer: Benjamini-Hochberg over the tags of the model of top_p_value_fwer (§9).
-- This macro is tag_summary_of over selected_head_pvalues and head_consistency.
-- Parameters: tag, all_tags, permutations, seed, null_model, alpha (significance level of
-- the counts), proximity_ignore, control_depth, score_type, trim, layers, all_layers.
--- tag: target tag
--- model: model name
--- n_rollouts: rollouts where the tag's ΔVA is defined (0 < targets < scored columns)
--- mean_n_target: mean number of scored target columns in those rollouts
--- n_selections: (rollout, layer) pairs with a best head
--- mean_best_abs_delta_va: mean over them of the best head's |ΔVA| (the notebook's selection)
--- share_uncorrected_significant: share of them with p_value_uncorrected <= alpha
--- share_fwer_significant: share of them with p_value_fwer <= alpha (expected about alpha by chance)
--- median_p_value_fwer: median over them of p_value_fwer
--- top_layer: layer of the most consistent head (smallest p_value_fwer, then largest |t|, layer, head)
--- top_head: head of the most consistent head
--- top_mean_delta_va_vert: its mean ΔVA across rollouts
--- top_t_statistic: its t statistic
--- top_share_same_sign: its share of rollouts with the sign of the mean
--- top_p_value: its sign-flip p-value (uncorrected)
--- top_p_value_fwer: its family-wise sign-flip p-value (max-T over all heads scored)
--- n_heads_fwer_significant: heads with p_value_fwer <= alpha
--- permutations: K, permutations drawn (label permutations and sign flips alike)
--- top_q_value_fwer: Benjamini-Hochberg q-value of top_p_value_fwer over the model's tags
create or replace macro tag_summary(
    {{ params: tag, all_tags, permutations, seed, null_model, alpha, @metric }}
) as table
with tag_summary_selections as materialized (
    select *
    from
        selected_head_pvalues(
            {{ pass: tag, all_tags, permutations, seed, null_model, @metric }}
        )
),

tag_summary_consistency as materialized (
    select *
    from
        head_consistency(
            {{ pass: tag, all_tags, permutations, seed, null_model, @metric }}
        )
)

select *
from
    tag_summary_of(
        selections := 'tag_summary_selections', consistency := 'tag_summary_consistency',
        {{ pass: permutations, alpha }}
    );

create or replace view tag_summary as
select * from tag_summary();
