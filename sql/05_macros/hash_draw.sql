-- A seeded uniform integer for resampling (docs/STATISTICS.md §8): the first 15 hex digits
-- of md5('boot/' || seed || '/' || resample || '/' || draw) read as an integer (0 to
-- 16^15 - 1); reproducible from its arguments alone, like the permutation keys.
create or replace macro hash_draw(seed, resample, draw) as
    ('0x' || substr(md5(
        'boot/' || seed::bigint::varchar || '/' || resample::varchar || '/' || draw::varchar
    ), 1, 15))::bigint;
