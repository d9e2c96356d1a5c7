-- The one tag-dependent sum of the block means (METRICS.md §6), kept beside kept_scores:
-- per stored (model, rollout, layer, head) and tag present in the rollout, TT = Σ B[r, c]
-- over analysed rows r and columns c <= r that both carry the tag (ranking set's trim).
-- A tag absent from a rollout has no row (its TT is 0). Written with the attention and
-- rewritten whenever the rollout's tags change (warehouse/catalog.py keep_scores).
create table if not exists kept_tag_blocks (
    model       varchar  not null,
    rollout_id  varchar  not null,
    layer       smallint not null,
    head        smallint not null,
    tag         varchar  not null,
    block_sum   double   not null  -- TT of this tag
);
