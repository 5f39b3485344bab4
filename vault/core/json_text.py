"""json.dumps(obj, indent=2), byte for byte, written mostly by json's C encoder.

CPython 3.11's json has an encoder in C, but any `indent` sends json.dumps to the pure-
Python one: three to four times the C one's time on `keyward list --json`'s 1,000 rows.
The C encoder takes any separators, and "," plus a newline and a depth's indentation lays
out that depth's items.  Python 3.13's C encoder does `indent` itself: then this can go.
"""

from __future__ import annotations

import json
from itertools import chain, compress, repeat  # (json has loaded itertools and operator already)
from operator import itemgetter, not_, setitem

try:
    from json.encoder import c_encode_basestring_ascii as _c_string, c_make_encoder as _c_encoder
except ImportError:  # pragma: no cover  (no _json: json.dumps does it all)
    _c_string = _c_encoder = None

# Exact types only: for these the C encoder writes what the Python one does.  Any other
# type (a subclass too: a float that redefines ==, a dict with its own items(), a
# namedtuple) fails the lookup, and json writes the whole of it; so do keys that are not
# str, which json turns into strings its own way.
_NESTED = {str: False, int: False, float: False, bool: False, type(None): False, dict: True, list: True, tuple: True}
_KEYS = frozenset((str,))
_DICT = frozenset((dict,))
_EMPTY = {dict: "{}", list: "[]", tuple: "[]"}
_INNER = itemgetter(slice(1, -1))  # a container's text without its brackets

# A nested container's stand-in while its parent is encoded.  Data makes the same text
# only with a string of NULs, and then the count of the pieces gives it away.
_HOLE = "\x00\x00"
_HOLE_TEXT = '"\\u0000\\u0000"'
# Between the texts of one depth's containers while they are one string: json's output
# has no raw control character but the newlines of its own indentation.
_CUT = "\x01"

# json writes deeper values itself (it may run out of stack where this would not: then
# it should, as it would without this module).
_MAX_DEPTH = 64

_depths: dict[int, tuple] = {}


def dumps_indented(obj: object) -> str:
    """Exactly json.dumps(obj, indent=2)."""
    if _c_encoder is not None and type(obj) in _EMPTY and obj:
        try:
            text = _by_depth(obj)
        except Exception:  # json raises its own error for this value, or writes it right
            text = None
        if text is not None:
            return text
    return json.dumps(obj, indent=2)


def _depth(depth: int) -> tuple:
    """For containers at `depth`: the C encoder of their items, and for a dict and for a
    list the text from one's last item to the next one's first, with _CUT in it."""
    found = _depths.get(depth)
    if found is None:
        outer, inner = "\n" + "  " * depth, "\n" + "  " * (depth + 1)
        # No circular check (markers None) and no default: what it is given is flat.
        encode = _c_encoder(None, None, _c_string, None, ": ", "," + inner, False, False, True)
        found = _depths.setdefault(depth, (encode, f"{outer}}}{_CUT}{{{inner}", f"{outer}]{_CUT}[{inner}"))
    return found


def _by_depth(obj: object) -> str | None:
    """The text, or None to leave it to json.  One depth at a time, all of its containers
    at once: encoded flat, with a hole for each container in them, and the holes filled
    from the depth below.  Each step is one C call over all of a depth's items (map,
    compress, join, split): Python's own work is per depth, not per item."""
    levels = []  # per depth, per kind: its containers, them with holes, what fills the holes
    seen = {id(obj)}
    batch = [obj]
    while batch:
        if len(levels) >= _MAX_DEPTH:
            return None
        is_dict = list(map(_DICT.__contains__, map(type, batch)))
        if False not in is_dict:
            groups = [(True, batch)]
        elif True not in is_dict:
            groups = [(False, batch)]
        else:
            groups = [(True, list(compress(batch, is_dict))), (False, list(compress(batch, map(not_, is_dict))))]
        level = []
        for dicts, group in groups:
            if dicts:
                # Rows of a table (`list --json`) have the same keys in the same order:
                # their keys are checked once, and their holes are set by column.
                first = tuple(group[0])
                rows = len(group) > 1 and list(map(tuple, group)).count(first) == len(group)
                if not _KEYS.issuperset(map(type, first if rows else chain.from_iterable(group))):
                    return None
                values = list(map(dict.values, group))
            else:
                rows, values = False, group
            holes = list(map(_NESTED.__getitem__, map(type, chain.from_iterable(values))))  # (KeyError: not ours)
            if True in holes:
                flat = list(map(dict.copy if dicts else list, group))
                if rows:
                    for column, key in enumerate(first):
                        in_column = holes[column::len(first)]
                        if True in in_column:
                            list(map(setitem, compress(flat, in_column), repeat(key), repeat(_HOLE)))
                else:
                    owners = chain.from_iterable(map(repeat, flat, map(len, group)))
                    keys = chain.from_iterable(group if dicts else map(range, map(len, group)))
                    list(map(setitem, compress(owners, holes), compress(keys, holes), repeat(_HOLE)))
                kids = list(compress(chain.from_iterable(values), holes))
            else:
                flat, kids = group, []
            level.append((dicts, group, flat, kids))
        levels.append(level)
        # The next depth: each container once, though it fill many holes, and not the
        # empty ones ("{}" and "[]" at any depth).  One met at a shallower depth too may
        # be in a reference cycle: json writes it, or reports the cycle.
        nested = list(filter(None, chain.from_iterable(kids for _, _, _, kids in level)))
        unique = dict(zip(map(id, nested), nested))
        if not seen.isdisjoint(unique):
            return None
        seen.update(unique)
        batch = list(unique.values())

    below: dict[int, str] = {}
    for depth in range(len(levels) - 1, -1, -1):
        encode, dict_cut, list_cut = _depth(depth)
        done = {}
        for dicts, group, flat, kids in levels[depth]:
            cut = dict_cut if dicts else list_cut
            inners = map(_INNER, map("".join, map(encode, flat, repeat(0))))
            if depth:  # cut e1 cut e2 ... en cut: each e's text between two _CUTs
                text = cut.join(chain(("",), inners, ("",)))
            else:
                closing, opening = cut.split(_CUT)
                text = "".join((opening, *inners, closing))
            if kids:
                pieces = text.split(_HOLE_TEXT)
                if len(pieces) != len(kids) + 1:  # a string of the data made _HOLE_TEXT too
                    return None
                spliced = [""] * (2 * len(pieces) - 1)
                spliced[::2] = pieces
                spliced[1::2] = map(below.get, map(id, kids), map(_EMPTY.__getitem__, map(type, kids)))
                text = "".join(spliced)
            if not depth:
                return text
            done.update(zip(map(id, group), text.split(_CUT)[1:-1]))
        below = done
    raise AssertionError("unreachable")  # pragma: no cover
