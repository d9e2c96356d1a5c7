-- The layers a metric call analyses, per model (METRICS.md §7): the representative
-- layers by default, the given INTEGER[] list, or with all_layers every layer 0..L-1
-- (overrides layers). Only models with a row in `models` are analysed.
--- model: model name
--- model_key: integer key of the model (representative_layers.model_key)
--- layer: a chosen layer index
create or replace macro selected_layers({{ params: layers, all_layers }}) as table
with model_layers as (
    select
        representative_layers.model,
        representative_layers.model_key,
        case
            when all_layers then range(0, representative_layers.n_layers)::integer[]
            when layers is not null then layers::integer[]
            else representative_layers.layers
        end as layer_list
    from representative_layers
)

select
    model_layers.model,
    model_layers.model_key,
    unnest(model_layers.layer_list)::smallint as layer
from model_layers;

create or replace view selected_layers as
select * from selected_layers();
