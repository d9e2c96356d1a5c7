-- The numeric sentence fields (sentence_fields rows with a number), optionally one field.
-- Parameter field: a field name; NULL (the default) picks the first counterfactual
-- importance field present: the alphabetically first numeric field whose name starts
-- with 'counterfactual' and contains 'importance' (math data:
-- counterfactual_importance_accuracy; bias data: counterfactual_bias_importance);
-- '*' keeps every numeric field.
--- rollout_id: rollout (rollouts.rollout_id)
--- idx: original sentence index
--- field: the chunks_labeled.json key
--- value: its number (booleans 0/1); rows whose value is not a finite number are left out
create or replace macro numeric_fields({{ params: field }}) as table
with numbers as (
    select
        fields.rollout_id,
        fields.idx,
        fields.field,
        fields.value
    from sentence_fields as fields
    where fields.value is not null
),

default_field as (
    select min(numbers.field) as name
    from numbers
    where numbers.field like 'counterfactual%' and numbers.field like '%importance%'
)

select
    numbers.rollout_id,
    numbers.idx,
    numbers.field,
    numbers.value
from numbers
where
    field = '*'
    or numbers.field = coalesce(field, (select default_field.name from default_field));

create or replace view numeric_fields as
select * from numeric_fields();
