-- The kept label-free scores (storage table kept_scores) of the chosen layers, joined to
-- the analysed sentences of a tag: the target flag of each column and the counts.
-- The kept columns were computed for their own parameter sets (uses_kept_scores):
-- vertical_score, n_valid_rows, column_sum, row_sum with trim; receiver_score without.
-- Parameters: tag, trim (analysed_sentences), layers, all_layers (selected_layers),
-- only_rollouts (NULL: every rollout).
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- c: analysed column index
--- idx: original sentence index of column c
--- is_target: sentence idx carries the target tag (m[c])
--- vertical_score: v_c of the ranking set; NULL when column c has no valid cell
--- n_valid_rows: number of valid cells in column c (ranking set)
--- column_sum: Σ B[r, c] over every analysed row r (ranking set's trim)
--- row_sum: Σ B[c, c'] over every analysed column c' of row c (ranking set's trim)
--- receiver_score: v_c of the receiver set (no trim, no control_depth)
--- n_sentences: n, analysed sentences of the rollout
--- n_va: target sentences among the analysed ones
create or replace macro tagged_kept_scores({{ params: tag, trim, layers, all_layers, only_rollouts }}) as table
select
    kept.model,
    kept.rollout_id,
    kept.layer,
    kept.head,
    analysed.r as c,
    kept.idx,
    analysed.is_target,
    kept.vertical_score,
    kept.n_valid_rows,
    kept.column_sum,
    kept.row_sum,
    kept.receiver_score,
    analysed.n_sentences,
    analysed.n_va
from kept_scores as kept
inner join selected_layers({{ pass: layers, all_layers }}) as chosen using (model, layer)
inner join analysed_sentences({{ pass: tag, trim }}) as analysed
    on analysed.rollout_id = kept.rollout_id
    and analysed.idx = kept.idx
where is_listed(kept.rollout_id, only_rollouts);

create or replace view tagged_kept_scores as
select * from tagged_kept_scores();
