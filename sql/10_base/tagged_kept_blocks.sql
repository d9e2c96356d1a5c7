-- The kept target x target block sums (storage table kept_tag_blocks) of one tag for the
-- chosen layers; no row where the rollout does not carry the tag (its sum is 0).
-- Parameters: tag, layers, all_layers (selected_layers).
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- sum_va_to_va: Σ B[r, c] over analysed target rows r and target columns c (ranking set's trim)
create or replace macro tagged_kept_blocks({{ params: tag, layers, all_layers }}) as table
select
    blocks.model,
    blocks.rollout_id,
    blocks.layer,
    blocks.head,
    blocks.block_sum as sum_va_to_va
from kept_tag_blocks as blocks
inner join selected_layers({{ pass: layers, all_layers }}) as chosen using (model, layer)
where blocks.tag = tag;

create or replace view tagged_kept_blocks as
select * from tagged_kept_blocks();
