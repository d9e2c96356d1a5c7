-- One row per sentence (chunk) of a rollout; idx is the position in the sentence list.
create table if not exists sentences (
    rollout_id varchar not null,
    idx        integer not null,
    text       varchar not null,
    char_start integer not null,  -- span in "\n".join(chunks) (text source 'chunks', METRICS.md §2)
    char_end   integer not null
);
