"""vault.core.json_text against json.dumps(obj, indent=2): the same text, to the byte."""

from __future__ import annotations

import collections
import enum
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.core import json_text
from vault.core.json_text import dumps_indented

# Strings that look like the module's own markers, or like JSON's structure, besides any text.
TRICKY = st.sampled_from(["\x00\x00", "\x00", "\x01", "\n", '"\\u0000\\u0000"', "\x00\x00x", "{", "}", "[]", ",\n  ", ": "])
TEXT = st.text() | st.text(st.characters(max_codepoint=0x1F)) | TRICKY
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from([-0.0, math.nan, math.inf, -math.inf])
           | TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=6) | st.lists(inner, max_size=4).map(tuple)
    | st.dictionaries(TEXT, inner, max_size=6),
    max_leaves=40,
)


def account(i: int) -> dict:
    """A row of `keyward list --json`, as the CLI writes it."""
    return {
        "label": f"acct-{i:05d}", "venue": ("kiiex", "tradeready", "hyperliquid")[i % 3], "env": "prod",
        "base_url": "https://api.example.test/v1", "created_at": "2026-12-07T20:21:05Z",
        "rotated_at": None if i % 4 else "2026-12-08T09:00:00Z", "key_age_days": 0.1 + i / 7, "key_max_age_days": 90,
        "key_overdue": i % 11 == 0, "generations": i % 3, "tags": [] if i % 2 else ["desk-a", f"t{i}"],
        "token": None if i % 5 else {"expires_at": "2026-12-07T21:00:00Z", "scopes": ["read", "trade"]},
        "signed_per_request": bool(i % 2), "signature_window_s": None if i % 3 else 5000,
        "rate_limit": {"limit": 10, "remaining": 3, "reset_at": "2026-12-07T20:22:05Z"} if i % 7 else None,
        "health": None if i % 6 else {"ok": True, "latency_ms": 12.5, "checked_at": "2026-12-07T20:20:00Z"},
    }


@settings(max_examples=200)
@given(VALUES)
def test_any_json_value_is_written_as_json_writes_it(value: object) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2)


@given(st.lists(VALUES, min_size=1, max_size=5) | st.dictionaries(TEXT, VALUES, min_size=1, max_size=5))
def test_the_fast_path_writes_it_itself(value: object) -> None:
    """Not json's own path behind a fallback: the C-encoder path gives the text, unless a
    string of the data spells the module's hole."""
    fast = json_text._by_depth(value)
    if fast is None:
        assert json_text._HOLE_TEXT in json.dumps(value)
    else:
        assert fast == json.dumps(value, indent=2)


ROWS = st.lists(TEXT, min_size=1, max_size=6, unique=True).flatmap(
    lambda keys: st.lists(st.tuples(*[VALUES] * len(keys)).map(lambda values: dict(zip(keys, values))),
                          min_size=2, max_size=6))


@settings(max_examples=50)
@given(ROWS)
def test_rows_of_a_table(rows: list[dict]) -> None:
    """Dicts with the same keys in the same order (the rows of `list --json`), whose
    values at a key may be containers in some rows and not in others."""
    expected = json.dumps(rows, indent=2)
    assert dumps_indented(rows) == expected
    fast = json_text._by_depth(rows)  # the fast path's own text, unless the data spells the hole
    assert fast == expected or (fast is None and json_text._HOLE_TEXT in json.dumps(rows))


def test_indentation_and_brackets_are_jsons() -> None:
    assert dumps_indented([1, [2, {"a": [], "b": {}}], ()]) == (
        '[\n  1,\n  [\n    2,\n    {\n      "a": [],\n      "b": {}\n    }\n  ],\n  []\n]')


@pytest.mark.parametrize("value", [
    [], {}, (), [[]], [{}], [()], {"a": []}, {"a": {}, "b": [], "c": ()}, [[], {}, [[]], [{}], {"x": [[]]}],
    [[[[[]]]]], {"": {"": {"": {}}}},
])
def test_empty_containers(value: object) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2)


@pytest.mark.parametrize("value", [
    (1, "a", (2, 3)), [(), (1,), ((),)], {"t": (1, [2, (3, {"u": ()})])},
    [True, False, [True], {"b": False}, (False,)], [1, True, 0, False, 1.0, None],
])
def test_tuples_and_booleans(value: object) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2)


def test_numbers_and_strings_as_json_spells_them() -> None:
    value = {"floats": [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, 5e-324, 0.1, 1e16, 1.5e-7],
             "ints": [0, -1, 2**63, -(2**200)],
             "strings": ["é", "😀", "\u2028", "\x00\x1f\x7f", '"\\/', "\ud800"], "\n\t": {"é": "x"}}
    assert dumps_indented(value) == json.dumps(value, indent=2)


def test_a_thousand_accounts() -> None:
    rows = [account(i) for i in range(1000)]
    expected = json.dumps(rows, indent=2)
    assert dumps_indented(rows) == expected
    assert json_text._by_depth(rows) == expected  # written by the fast path, not by json


def test_data_that_spells_the_hole() -> None:
    for value in (["\x00\x00", [1]], {"\x00\x00": {"a": 1}}, [{"k": "\x00\x00"}, {"k": [1]}], ["\x00\x00"]):
        assert dumps_indented(value) == json.dumps(value, indent=2)


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


class Weird(float):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = float.__hash__


@pytest.mark.parametrize("value", [
    {1: "int", None: "none", 2.5: "float"}, [{True: "bool"}, {False: 0}], [{"a": {3: 4}}],
    [Colour.RED, {"c": Colour.RED}], [Name("n"), {Name("k"): Name("v")}], [Weird(1.5), Weird(math.nan)],
    collections.OrderedDict(b=1, a=[2]), [collections.defaultdict(list, a=[1])],
    [collections.namedtuple("P", "x y")(1, [2])],
])
def test_other_types_and_keys_as_json_writes_them(value: object) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2)


def test_shared_containers() -> None:
    shared = {"z": [1, 2]}
    for value in ([shared, shared], [shared, {"again": shared}], {"a": shared, "b": [shared]}):
        assert dumps_indented(value) == json.dumps(value, indent=2)


def test_deep_values() -> None:
    """Deeper than the fast path goes: json writes them."""
    deep: object = [1, "x"]
    for level in range(150):
        deep = [deep, level] if level % 2 else {"d": deep, "n": level}
    assert dumps_indented(deep) == json.dumps(deep, indent=2)


def raised(call) -> tuple[type, str] | None:
    try:
        call()
    except Exception as err:  # noqa: BLE001  (the error itself is what is compared)
        return type(err), str(err)
    return None


def test_errors_are_jsons() -> None:
    cycle: list = [1]
    cycle.append({"back": cycle})
    for value in (cycle, [object()], {"a": {1j: 2}}, [10**5000], {"s": {1, 2}}):
        expected = raised(lambda: json.dumps(value, indent=2))
        assert expected is not None
        assert raised(lambda: dumps_indented(value)) == expected


@pytest.mark.parametrize("value", ["x", 1, 1.5, None, True, math.nan])
def test_scalars(value: object) -> None:
    assert dumps_indented(value) == json.dumps(value, indent=2)
