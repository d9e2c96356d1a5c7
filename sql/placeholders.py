"""The SQL text of an object file, with its parameter lists filled in from sql/defaults.py.

DuckDB needs a macro's defaults as literals in its header, so the files do not write
them: a header names its parameters and the installer writes each default, once, from
``macro_defaults(name)`` (as dbt renders ``{{ var() }}`` before it runs a model). Two
placeholders, each a comma-separated list of parameter names and ``@group`` names (a
group is a tuple in ``GROUPS``, expanded in place):

- ``create or replace macro NAME({{ params: tag, @metric }})`` renders
  ``tag := 'verbalized_evaluation_awareness', proximity_ignore := 4, ...``: each
  parameter with NAME's default;
- ``callee({{ pass: tag, @metric }})`` renders ``tag := tag, proximity_ignore :=
  proximity_ignore, ...``: the caller hands its own parameters on by name.

Two more name a kept score set (``KEPT_SETS``): ``{{ kept: ranking }}`` renders its
arguments (``proximity_ignore := 4, control_depth := true, ...``) and ``{{ kept_test:
ranking }}`` the test that a call's parameters are those (``proximity_ignore = 4 and
control_depth = true and ...``).
"""

from __future__ import annotations

import re
from pathlib import Path

from sql.defaults import GROUPS, KEPT_SETS, macro_defaults

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*:([^{}]*)\}\}")
# A params placeholder stands right after the name and parenthesis of the macro it heads.
HEADER = re.compile(r"\bmacro\s+(\w+)\s*\(\s*$", re.IGNORECASE)


class RenderError(Exception):
    """An object file's placeholder cannot be rendered."""


def sql_literal(value: object) -> str:
    """A Python default as a DuckDB literal: None -> null, bools, quoted strings, numbers."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"no SQL literal for {value!r}")


def parameter_names(listed: str, where: str) -> list[str]:
    """The names of a placeholder's list, with each ``@group`` expanded."""
    names = []
    for item in (part.strip() for part in listed.split(",")):
        if item.startswith("@"):
            if item[1:] not in GROUPS:
                raise RenderError(f"{where}: unknown group '{item}' (sql/defaults.py GROUPS)")
            names.extend(GROUPS[item[1:]])
        elif re.fullmatch(r"\w+", item):
            names.append(item)
        else:
            raise RenderError(f"{where}: '{item}' is not a parameter name or @group")
    return names


def render_text(text: str, where: str) -> str:
    """``text`` with every placeholder rendered; ``where`` names the file in errors."""

    def fill(match: re.Match) -> str:
        kind = match.group(1)
        if kind in ("kept", "kept_test"):
            return kept_set(kind, match.group(2).strip(), where)
        names = parameter_names(match.group(2), where)
        if kind == "pass":
            return ", ".join(f"{name} := {name}" for name in names)
        if kind != "params":
            raise RenderError(f"{where}: unknown placeholder '{{{{ {kind}: ... }}}}'")
        header = HEADER.search(text, 0, match.start())
        if header is None or header.end() != match.start():
            raise RenderError(f"{where}: '{{{{ params: ... }}}}' must follow 'macro NAME('")
        macro = header.group(1)
        defaults = macro_defaults(macro)
        missing = [name for name in names if name not in defaults]
        if missing:
            raise RenderError(f"{where}: macro {macro}: no default for parameter "
                              f"'{missing[0]}' in sql/defaults.py")
        return ", ".join(f"{name} := {sql_literal(defaults[name])}" for name in names)

    rendered = PLACEHOLDER.sub(fill, text)
    if "{{" in rendered:
        raise RenderError(f"{where}: a '{{{{' that is not a placeholder")
    return rendered


def kept_set(kind: str, name: str, where: str) -> str:
    """A kept score set's parameters as named arguments (kept) or as a test (kept_test)."""
    if name not in KEPT_SETS:
        raise RenderError(f"{where}: unknown kept score set '{name}' (sql/defaults.py KEPT_SETS)")
    values = KEPT_SETS[name].items()
    if kind == "kept":
        return ", ".join(f"{param} := {sql_literal(value)}" for param, value in values)
    return " and ".join(f"{param} = {sql_literal(value)}" for param, value in values)


def render(path: Path) -> str:
    """The SQL of an object file as it is executed: placeholders rendered."""
    return render_text(path.read_text(encoding="utf-8"), f"sql/{path.parent.name}/{path.name}")
