"""Every macro default in sql/ comes from the one source, sql/defaults.py.

No .sql file writes a default: a header lists its parameters in a ``{{ params: ... }}``
placeholder (sql/placeholders.py). The header of each macro is parsed from the file as it
is installed (rendered), whatever the file or layer; each ``param := default`` is
evaluated by DuckDB and compared with ``macro_defaults(name)``. DuckDB's own catalogue
confirms that the parser saw every macro and every parameter.
"""

from __future__ import annotations

import re
from decimal import Decimal

import duckdb
import pytest
from click.testing import CliRunner

import cli
import sql
from reports.data import ReportParams
from sql.defaults import DEFAULTS, GROUPS, KEPT_SETS, PER_MACRO, macro_defaults
from sql.placeholders import RenderError, render_text

HEADER = re.compile(r"\bcreate\s+(?:or\s+replace\s+)?(?:temp\s+|temporary\s+)?macro\s+"
                    r"(?:\w+\.)?(\w+)\s*\(", re.IGNORECASE)


def _split_top_level(text: str) -> tuple[list[str], int]:
    """The comma-separated items of a parenthesised list starting at text[0] == '(' and
    the index of its closing parenthesis; quotes and nested brackets are respected."""
    depth, quote, items, start = 0, None, [], 1
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                items.append(text[start:i])
                return [item.strip() for item in items if item.strip()], i
        elif char == "," and depth == 1:
            items.append(text[start:i])
            start = i + 1
    raise AssertionError(f"unbalanced parentheses in: {text[:80]}")


def _without_comments(text: str) -> str:
    return re.sub(r"--[^\n]*", "", text)


def macro_headers(rendered: bool = True) -> list[tuple[str, str, list[str]]]:
    """(file, macro, parameter items) for every macro header of every .sql file in sql/,
    as installed (rendered) or as written."""
    headers = []
    for path in sql.sql_files():
        text = sql.render(path) if rendered else path.read_text(encoding="utf-8")
        text = _without_comments(text)
        for match in HEADER.finditer(text):
            items, _end = _split_top_level(text[match.end() - 1:])
            headers.append((str(path.relative_to(sql.SQL_DIR)), match.group(1), items))
    return headers


def _literal(con, expression: str):
    value = con.execute(f"select {expression}").fetchone()[0]
    return float(value) if isinstance(value, Decimal) else value


def header_defaults() -> list[tuple[str, str, str, object]]:
    """(file, macro, parameter, default) for every ``name := default`` of every header."""
    con = duckdb.connect()
    found = []
    for file, macro, items in macro_headers():
        for item in items:
            name, sep, expression = item.partition(":=")
            if sep:
                found.append((file, macro, name.strip(), _literal(con, expression.strip())))
    return found


def _same(a, b) -> bool:
    """Equal and of the same type (so true is not 1, and 4 is not 4.0)."""
    return type(a) is type(b) and a == b


def test_no_sql_file_writes_a_default():
    written = [(file, macro, item) for file, macro, items in macro_headers(rendered=False)
               for item in items if ":=" in item]
    assert not written, f"write {{{{ params: ... }}}} instead of the defaults: {written}"
    placeholders = [items for _file, _macro, items in macro_headers(rendered=False)
                    if any(item.startswith("{{ params:") for item in items)]
    assert len(placeholders) > 30


def test_the_parser_sees_every_macro_and_parameter_duckdb_knows():
    con = duckdb.connect()
    sql.install(con)
    catalogue = {
        (name, tuple(parameters))
        for name, parameters in con.execute(
            "select function_name, parameters from duckdb_functions() "
            "where function_type in ('macro', 'table_macro') and not internal"
        ).fetchall()
    }
    parsed = {(macro, tuple(item.partition(":=")[0].strip() for item in items))
              for _file, macro, items in macro_headers()}
    assert catalogue and parsed == catalogue


def test_every_macro_default_comes_from_sql_defaults():
    found = header_defaults()
    assert len(found) > 50  # the parser found the headers
    problems = []
    for file, macro, name, value in found:
        expected = macro_defaults(macro)
        if name not in expected:
            problems.append(f"{file}: {macro}({name} := {value!r}): no default for "
                            f"'{name}' in sql/defaults.py")
        elif not _same(value, expected[name]):
            problems.append(f"{file}: {macro}({name} := {value!r}) but sql/defaults.py says "
                            f"{expected[name]!r}; fix one, or declare it in PER_MACRO with the reason")
    assert not problems, "\n".join(problems)


def test_every_declared_difference_is_real_and_explained():
    in_headers = {(macro, name) for _file, macro, name, _value in header_defaults()}
    for macro, (overrides, reason) in PER_MACRO.items():
        assert len(reason) > 20, macro
        for name, value in overrides.items():
            assert (macro, name) in in_headers, f"{macro} has no parameter {name}"
            assert not _same(value, DEFAULTS[name]), f"{macro}.{name} does not differ"


def test_report_parameters_and_cli_help_read_the_same_defaults():
    params = ReportParams()
    for name in ("tag", "proximity_ignore", "control_depth", "score_type", "trim", "layers",
                 "permutations", "seed"):
        assert _same(getattr(params, name), DEFAULTS[name]), name
    runner = CliRunner()
    report_help = runner.invoke(cli.main, ["report", "--help"], terminal_width=200).output
    rank_help = runner.invoke(cli.main, ["rank", "--help"], terminal_width=200).output
    for text in (report_help, rank_help):
        assert f"[default: {DEFAULTS['tag']}]" in text
        assert f"[default: {DEFAULTS['proximity_ignore']}]" in text
        assert f"[default: {DEFAULTS['score_type']}]" in text
    report_options = {param.name: param for param in cli.main.commands["report"].params}
    for name in ("permutations", "seed"):
        assert _same(report_options[name].default, DEFAULTS[name]), name


@pytest.mark.parametrize("header, expected", [
    ("create or replace macro m(a, b := 'x,(y)', c := [1, 2], d := null) as table select 1",
     ("m", ["a", "b := 'x,(y)'", "c := [1, 2]", "d := null"])),
    ("CREATE MACRO main.n(p := 4) AS p + 1", ("n", ["p := 4"])),
])
def test_the_header_parser_on_hand_made_headers(header, expected):
    match = HEADER.search(header)
    items, _end = _split_top_level(header[match.end() - 1:])
    assert (match.group(1), items) == expected


def test_placeholders_render_defaults_groups_and_pass_through_lists():
    text = ("create or replace macro head_effects(\n    {{ params: tag, @metric }}\n) as table\n"
            "select * from head_stats({{ pass: tag, @metric }}, k := 1)")
    header, call = render_text(text, "test.sql").split("\n) as table\n")
    defaults = macro_defaults("head_effects")
    assert header == "create or replace macro head_effects(\n    " + ", ".join(
        f"{name} := {expected}" for name, expected in zip(
            ("tag",) + GROUPS["metric"],
            (f"'{defaults['tag']}'", "4", "true", "'mean'", "true", "null", "true"),
            strict=True))
    assert call == ("select * from head_stats(tag := tag, " + ", ".join(
        f"{name} := {name}" for name in GROUPS["metric"]) + ", k := 1)")


def test_kept_set_placeholders_render_the_sets_of_sql_defaults():
    assert render_text("f({{ kept: receiver }})", "x.sql") == (
        "f(proximity_ignore := 4, control_depth := false, score_type := 'mean', trim := false)")
    assert render_text("{{ kept_test: ranking }}", "x.sql") == (
        "proximity_ignore = 4 and control_depth = true and score_type = 'mean' and trim = true")


def test_the_kept_sets_are_what_the_metrics_use_by_default():
    """The ranking set is the notebook's default setting, the receiver set the paper's."""
    for name, macro in (("ranking", "rollout_ranking"), ("receiver", "receiver_heads")):
        defaults = macro_defaults(macro)
        assert KEPT_SETS[name] == {param: defaults[param] for param in KEPT_SETS[name]}


@pytest.mark.parametrize("text, message", [
    ("f({{ kept: nothing }})", "x.sql: unknown kept score set 'nothing'"),
    ("create macro m({{ params: tag, wobble }}) as 1",
     "x.sql: macro m: no default for parameter 'wobble' in sql/defaults.py"),
    ("create macro m({{ params: @nothing }}) as 1", "x.sql: unknown group '@nothing'"),
    ("select m({{ params: tag }})", "x.sql: '{{ params: ... }}' must follow 'macro NAME('"),
    ("select m({{ passes: tag }})", "x.sql: unknown placeholder"),
])
def test_a_placeholder_that_cannot_render_names_the_file_and_parameter(text, message):
    with pytest.raises(RenderError, match=re.escape(message)):
        render_text(text, "x.sql")
