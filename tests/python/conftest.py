"""Fixtures of the Python package's tests: the seqrec program next to them, generated logs,
and the shared real data (skipped with a message when absent)."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

import seqrec  # noqa: E402  (PYTHONPATH=build/python, set by ctest)


def seqrec_binary():
    b = os.environ.get("SEQREC_BINARY") or seqrec.binary_path()
    if not os.path.exists(b):
        pytest.skip(f"the seqrec program is not at {b}")
    return b


def shared_data():
    d = os.environ.get("SEQREC_SHARED_DATA_DIR") or os.path.join(ROOT, "..", "shared", "data")
    return d


def run_cli(*args, check=True):
    """Runs the seqrec program; returns the CompletedProcess."""
    r = subprocess.run([seqrec_binary(), *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"seqrec {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr}")
    return r


@pytest.fixture(scope="session")
def cli():
    return run_cli


@pytest.fixture(scope="session")
def log_file(tmp_path_factory):
    """A small generated session log (tab-separated, SessionId ItemId Time)."""
    d = tmp_path_factory.mktemp("data")
    path = d / "log.tsv"
    run_cli("generate", "--events", 30000, "--items", 400, "--days", 20, "--seed", 7, "-o", path)
    return path


@pytest.fixture(scope="session")
def log_df(log_file):
    import pandas as pd

    return pd.read_csv(log_file, sep="\t")


@pytest.fixture(scope="session")
def split(log_df):
    ev = seqrec.Events.from_dataframe(log_df, session="SessionId", item="ItemId", time="Time")
    return seqrec.prepare(ev, protocol="session")


@pytest.fixture(scope="session")
def split_dir(split, tmp_path_factory):
    d = tmp_path_factory.mktemp("split") / "split"
    split.save(d)
    return d
