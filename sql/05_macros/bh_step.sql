-- One Benjamini-Hochberg step (docs/STATISTICS.md §9): m p / rank, where rank counts the
-- family's p-values <= p (bh_rank) and m is the family size; bh_q_value takes the
-- smallest step over the p-values >= p.
create or replace macro bh_step(p, p_rank, family_size) as p * family_size / p_rank::double;
