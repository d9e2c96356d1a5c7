-- The depends_on lists of chunks_labeled.json: one row per entry, the edge "sentence idx
-- builds on the earlier sentence depends_on_idx" (a repeated entry is a repeated row).
-- Entries that name no earlier sentence are skipped at load, with a warning on the rollout. Written by warehouse.store with the rollout.
create table if not exists sentence_dependencies (
    rollout_id     varchar not null,
    idx            integer not null,
    depends_on_idx integer not null  -- 0 <= depends_on_idx < idx
);
