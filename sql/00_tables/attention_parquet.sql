-- The attention cells stored as Parquet (one file per model and rollout, named by the
-- parquet_files manifest), read in place. The warehouse rewrites this view, with the
-- absolute paths of the current files, in the same transaction that changes the manifest
-- (warehouse/catalog.py), so the file list and the manifest never disagree. Empty until
-- the first attention is written; columns as attention_inline.
create view if not exists attention_parquet as
select * from attention_inline where false;
