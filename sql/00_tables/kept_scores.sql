-- Label-free scores kept at ingest (the README's "Kept scores"): one row per stored
-- (model, rollout, layer, head, sentence idx), computed from the rollout's attention in
-- the transaction that stores it and dropped or rewritten with it. Nothing here depends
-- on a tag; the metrics read these rows when their parameters are the kept ones
-- (uses_kept_scores) and compute from the cells otherwise.
-- Ranking set (METRICS.md §4-5: trim, proximity_ignore 4, control_depth, mean):
-- vertical_score, n_valid_rows, column_sum, row_sum (NULL outside the analysed range).
-- Receiver set (§8: no trim, proximity_ignore 4, no control_depth, mean): receiver_score.
create table if not exists kept_scores (
    model          varchar  not null,
    rollout_id     varchar  not null,
    layer          smallint not null,
    head           smallint not null,
    idx            integer  not null,  -- original sentence index
    vertical_score double,             -- v_c of the analysed column idx (ranking set)
    n_valid_rows   bigint,             -- valid cells of column idx (ranking set)
    column_sum     double,             -- Σ B[r, idx] over every analysed row r (trim)
    row_sum        double,             -- Σ B[idx, c] over every analysed column c (trim)
    receiver_score double              -- v_c of column idx (receiver set)
);
