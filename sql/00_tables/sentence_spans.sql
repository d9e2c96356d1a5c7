-- Character and token spans of each sentence in the text the model read (METRICS.md §2).
create table if not exists sentence_spans (
    model       varchar not null,
    rollout_id  varchar not null,
    idx         integer not null,
    text_source varchar not null,  -- 'chunks' or 'full_cot'
    char_start  integer,           -- null when the sentence was not found in the text
    char_end    integer,
    token_start integer,
    token_end   integer,
    match       varchar not null   -- 'exact', 'stripped', 'whitespace' or 'missing'
);
