"""Helpers shared by the package's modules."""

import numbers
import operator

import numpy as np

from ._seqrec import InputError


def text(name, value):
    """A Python value as the text the CLI's parameter tables read ("true", "100,100", ...)."""
    if value is None:
        raise InputError(f"parameter '{name}': None is not a value")
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, np.ndarray, range)):
        return ",".join(text(name, v) for v in value)
    raise InputError(
        f"parameter '{name}': a {type(value).__name__} is not a value "
        "(give a number, a string, a bool or a list)"
    )


def options(values, none_unset=True):
    """[(name, text)] for the C++ side, from a dict of keyword arguments (None = unset, or
    an error with none_unset=False)."""
    return [(k, text(k, v)) for k, v in values.items() if v is not None or not none_unset]


def path_text(path, what):
    """A str path from a str or os.PathLike, else InputError naming `what`."""
    import os

    try:
        return os.fspath(path)
    except TypeError:
        raise InputError(f"{what}: expected a path, got {type(path).__name__}") from None


def integer(value, what, lo, hi):
    """An int in [lo, hi] from an integral value (not a bool, float or string), else
    InputError naming `what` (so that a bad argument never reaches the C++ core)."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{what} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise InputError(f"{what} must be an integer, got {value!r}") from None
    if v < lo or v > hi:
        raise InputError(f"{what} must be between {lo} and {hi}, got {v}")
    return v


def threads(value):
    """The threads argument: 0 (every core) or a count up to 4096, as the CLI's --threads."""
    return integer(value, "threads", 0, 4096)


def item_ids(values, what):
    """A list of str item ids from a list (tuple, array, ...) of ids of any exact type; a
    single string, None, NaN or a non-list is an InputError naming `what`."""
    if isinstance(values, (str, bytes)):
        raise InputError(f"{what}: expected a list of item ids, got a single string")
    if type(values) is list and all(type(v) is str for v in values):
        return values
    try:
        it = iter(values)
    except TypeError:
        raise InputError(f"{what}: expected a list of item ids, got {type(values).__name__}") \
            from None
    out = []
    for v in it:
        if v is None or (isinstance(v, float) and v != v):
            raise InputError(f"{what}: an item id is missing (None/NaN)")
        out.append(str(v))
    return out
