-- Sentence labels in long form: one row per (rollout, sentence, tag) (METRICS.md §1).
create table if not exists sentence_tags (
    rollout_id varchar not null,
    idx        integer not null,
    tag        varchar not null
);
