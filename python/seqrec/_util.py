"""Helpers shared by the package's modules."""

import numbers

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
