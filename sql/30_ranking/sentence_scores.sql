-- Per (model, rollout, sentence): white-box scores beside the sentence's tags and its
-- place in the dependency graph, so they can be joined with the black-box fields
-- (sentence_fields). The receiver score uses the receiver heads' setting (receiver_scores:
-- the paper's, METRICS.md §8, k heads); the best-head vertical scores use the other
-- parameters (the notebook's setting by default, §5-7): for each chosen layer, v_c of the
-- sentence in that layer's best head (NULL for a sentence outside the analysed range, one
-- of the last p analysed columns, or a layer without a best head).
-- Parameters: k (receiver heads, as receiver_heads) and those of best_heads.
--- model: model name
--- rollout_id: rollout
--- idx: original sentence index
--- text: the sentence
--- tags: its tags, sorted
--- receiver_score: mean v_c over the k receiver heads (receiver_scores); NULL when undefined
--- layers: the layers scored, ascending (as rollout_ranking)
--- heads: best head of each layer (aligned with layers)
--- vertical_score_by_layer: v_c of the sentence in each layer's best head (aligned with layers)
--- in_degree: later sentences that depend on it (depends_on)
--- out_degree: earlier sentences it depends on
create or replace macro sentence_scores({{ params: k, tag, @metric }}) as table
with vert as (
    select
        scores.model,
        scores.rollout_id,
        scores.layer,
        scores.head,
        scores.idx,
        scores.vertical_score
    from
        vertical_scores({{ pass: tag, @metric }}) as scores
),

-- every sentence of each (model, rollout) that has attention, once per chosen layer
grid as (
    select
        best.model,
        best.rollout_id,
        best.layer,
        best.head,
        graph.idx
    from best_heads({{ pass: tag, @metric }}) as best
    inner join sentence_graph as graph using (rollout_id)
),

by_sentence as (
    select
        grid.model,
        grid.rollout_id,
        grid.idx,
        list(grid.layer::integer order by grid.layer) as layers,
        list(grid.head::integer order by grid.layer) as heads,
        list(vert.vertical_score order by grid.layer) as vertical_score_by_layer
    from grid
    left join vert using (model, rollout_id, layer, head, idx)
    group by grid.model, grid.rollout_id, grid.idx
)

select
    by_sentence.model,
    by_sentence.rollout_id,
    by_sentence.idx,
    graph.text,
    graph.tags,
    receivers.receiver_score,
    by_sentence.layers,
    by_sentence.heads,
    by_sentence.vertical_score_by_layer,
    graph.in_degree,
    graph.out_degree
from by_sentence
inner join sentence_graph as graph using (rollout_id, idx)
left join receiver_scores({{ pass: k, tag }}) as receivers using (model, rollout_id, idx)
order by by_sentence.model, by_sentence.rollout_id, by_sentence.idx;

create or replace view sentence_scores as
select * from sentence_scores();
