-- The best-head order (METRICS.md §7): largest |ΔVA| first, compared after rounding to 12
-- decimals so float noise cannot reorder tied heads; ties go to the lowest head. Use as
--     order by best_head_key(delta_va_vert) desc, head
create or replace macro best_head_key(delta_va_vert) as round(abs(delta_va_vert), 12);
