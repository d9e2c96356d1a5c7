-- Representative layers of each model (METRICS.md §7): early, middle and late,
-- sorted(set([max(0, int(0.10*(L-1))), int(0.50*(L-1)), int(0.90*(L-1))])).
-- Python's int() truncates toward zero and the products are IEEE doubles, as here.
--- model: model name, as in every attention row
--- model_key: integer key of the model (1, 2, ... in model order), for joins inside the metrics
--- n_layers: L, the model's number of layers (models.n_layers)
--- layers: the representative layer indices, ascending and distinct (Qwen3-4B, L = 36: [3, 17, 31])
create or replace view representative_layers as
with layer_counts as (
    select
        models.model,
        dense_rank() over (order by models.model)::integer as model_key,
        models.n_layers,
        models.n_layers - 1 as last_layer
    from models
),

candidates as (
    select
        model,
        model_key,
        n_layers,
        [
            greatest(0, trunc(0.10::double * last_layer)::integer),
            trunc(0.50::double * last_layer)::integer,
            trunc(0.90::double * last_layer)::integer
        ] as candidate_layers
    from layer_counts
)

select
    model,
    model_key,
    n_layers,
    list_sort(list_distinct(candidate_layers)) as layers
from candidates;
