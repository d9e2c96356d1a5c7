-- The other keys of each chunks_labeled.json entry (every key but chunk, chunk_idx and
-- function_tags): the thought-anchors measurements such as
-- counterfactual_importance_accuracy, p_biased, depends_on, summary. One row per
-- (rollout, sentence, key). Written by warehouse.store with the rollout.
create table if not exists sentence_fields (
    rollout_id varchar not null,
    idx        integer not null,
    field      varchar not null,  -- the key
    value      double,            -- the number (booleans 0/1); NULL if not a finite number
    value_json json not null      -- the value as JSON (objects, lists, strings; NaN -> null)
);
