-- One row per rollout directory (METRICS.md §1). Written by warehouse.store.
create table if not exists rollouts (
    rollout_id      varchar not null,  -- path of the rollout directory relative to its root (posix)
    rollout_name    varchar not null,  -- the directory's own name, e.g. problem_9_va_07
    root            varchar not null,  -- the root it was discovered under (absolute)
    source_path     varchar not null,  -- absolute path of the rollout directory
    problem_id      varchar,           -- parsed from the name: problem_9_va_07 -> 9, item_3 -> 3
    solution_folder varchar,           -- nearest ancestor named *_base_solution, if any
    is_correct      boolean,           -- from solution_folder, else base_solution.json is_correct
    path_parts      varchar[],         -- rollout_id split on '/'
    n_sentences     integer not null,  -- N, before any trim
    sentence_source varchar not null,  -- 'chunks.json' or 'chunks_labeled.json' (fallback, METRICS.md §1)
    text_hash       varchar not null,  -- sha256 of the sentence list (json)
    content_hash    varchar not null,  -- sha256 of everything stored for the rollout
    metadata        json,              -- every other top-level JSON file, keyed by file stem
    warnings        varchar[],         -- non-fatal problems found while loading
    loaded_at       timestamp not null
);
