-- The stored cells of the analysed matrix B (METRICS.md §4) for the chosen layers (§7),
-- with the analysed indices (r, c) and the target flag of the row sentence.
-- Parameters: tag, trim (§4); layers (NULL: the representative layers of each model,
-- §7; an INTEGER[] list replaces them); all_layers (true: every layer 0..L-1 of the
-- model, overrides layers; see selected_layers). Only models with a row in `models` are
-- analysed. unscored_only (true: only cells without kept scores, attention_cells);
-- only_model, only_rollouts (non-NULL: that model's cells / those listed rollouts' alone).
-- Only cells with j <= i are stored; cells above the diagonal are 0 (§3).
-- The integer keys let the metrics sort and group without string keys (speed).
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- i: source sentence, original index
--- j: target sentence, original index
--- r: analysed row index (i - first_idx)
--- c: analysed column index (j - first_idx), c <= r
--- value: B[r, c]
--- row_is_target: sentence i carries the target tag (m[r])
--- model_key: integer key of the model (representative_layers.model_key)
--- rollout_key: integer key of the rollout (analysed_sentences.rollout_key)
--- row_key: integer key of the row sentence i (analysed_sentences.sentence_key)
create or replace macro analysed_cells(
    {{ params: tag, trim, layers, all_layers, unscored_only, only_model, only_rollouts }}
) as table
with row_sentences as (
    select *
    from analysed_sentences({{ pass: tag, trim }}) as analysed
    where is_listed(analysed.rollout_id, only_rollouts)
),

layer_cells as (
    select
        cells.*,
        chosen.model_key
    from attention_cells(unscored_only := unscored_only) as cells
    inner join selected_layers({{ pass: layers, all_layers }}) as chosen using (model, layer)
    where is_in_scope(cells.model, cells.rollout_id, only_model, only_rollouts)
)

select
    layer_cells.model,
    layer_cells.rollout_id,
    layer_cells.layer,
    layer_cells.head,
    layer_cells.i,
    layer_cells.j,
    row_sentences.r,
    layer_cells.j - row_sentences.first_idx as c,
    layer_cells.value,
    row_sentences.is_target as row_is_target,
    layer_cells.model_key,
    row_sentences.rollout_key,
    row_sentences.sentence_key as row_key
from layer_cells
inner join row_sentences
    on row_sentences.rollout_id = layer_cells.rollout_id
    and row_sentences.idx = layer_cells.i
where layer_cells.j >= row_sentences.first_idx;

create or replace view analysed_cells as
select * from analysed_cells();
