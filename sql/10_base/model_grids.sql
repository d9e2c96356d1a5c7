-- One row per model: its layer and head grid and where it came from.
--- model: model name
--- n_layers: number of layers
--- n_heads: query heads per layer
--- source: where the weights came from (hub id or path), if known
--- revision: the weights' revision, if known
create or replace view model_grids as
select
    models.model,
    models.n_layers,
    models.n_heads,
    models.source,
    models.revision
from models;
