"""Python's overheads over the C++ core (docs/python.md, issue 15's "Fast" targets).

    PYTHONPATH=build/python /usr/bin/python3 bench/python_bench.py              # full size
    PYTHONPATH=build/python /usr/bin/python3 bench/python_bench.py --rows 20000 --sessions 200

Measures, in one run on one machine:
  1. a single recommend(): the Python call against the same call made in C++ (a loop
     inside the module), per call; the difference is Python's overhead;
  2. recommend_batch() over every test prediction against `seqrec eval` on the same test
     set, per prediction;
  3. Events from a DataFrame of --rows rows against the C++ reader parsing the same data as
     a file (no binary cache), and the process's peak RSS growth over each.
Writes JSON to bench/results/python_bench.json (or --out). Run it on a quiet machine.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

import seqrec


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_of(fn, repeats):
    """The median wall time of `repeats` calls of fn() (the machine may be shared: medians)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def single_call(model, split, n):
    """Per call: Python's recommend() and the same call looped in C++, alternated."""
    session = split.test.sequences()[0]
    items = [str(x) for x in session]
    model.recommend(items, k=20)
    py, cpp, diff = [], [], []
    for _ in range(11):
        t0 = time.perf_counter()
        for _ in range(n):
            model.recommend(items, k=20)
        p = (time.perf_counter() - t0) / n
        c = model._core.bench_recommend(items, 20, n) / n
        py.append(p)
        cpp.append(c)
        diff.append(p - c)
    return {"python_us": float(np.median(py)) * 1e6, "cpp_us": float(np.median(cpp)) * 1e6,
            "overhead_us": float(np.median(diff)) * 1e6,
            "overhead_us_quartiles": [float(np.percentile(diff, q)) * 1e6 for q in (25, 75)],
            "calls": n, "pairs": len(diff), "session_length": len(items), "n_items": model.n_items}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the DataFrame test")
    ap.add_argument("--events", type=int, default=300_000, help="events of the generated log")
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--sessions", type=int, default=10_000, help="sessions of the batch test")
    ap.add_argument("--calls", type=int, default=20_000, help="single recommend() calls")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the DataFrame test")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "results", "python_bench.json"))
    a = ap.parse_args()
    binary = seqrec.binary_path()
    res = {"seqrec": seqrec.__version__, "isa": seqrec._seqrec.isa(), "python": sys.version.split()[0],
           "machine": platform.machine(), "cpus": os.cpu_count(), "args": vars(a)}

    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "log.tsv")
        subprocess.run([binary, "generate", "--events", str(a.events), "--items", str(a.items),
                        "-o", log], check=True, capture_output=True)
        split = seqrec.prepare(seqrec.read_events(log, cache_dir="none"), protocol="session",
                               min_item_support=1, force=True)
        split_dir = os.path.join(d, "split")
        split.save(split_dir)
        model = seqrec.GRU4Rec(layers=[100], epochs=1).fit(split.train, progress=False,
                                                           threads=a.threads)

        # 1. single recommend: Python's call and the C++ loop, alternated, 11 pairs; the
        # overhead is the median of the per-pair differences. Measured on this model and on
        # a tiny one (a 500-item catalogue, 16 units), where the call itself costs a few
        # microseconds and the overhead is not lost in the noise of the scoring pass.
        tiny_log = os.path.join(d, "tiny.tsv")
        subprocess.run([binary, "generate", "--events", "20000", "--items", "500", "-o", tiny_log],
                       check=True, capture_output=True)
        tiny_split = seqrec.prepare(seqrec.read_events(tiny_log, cache_dir="none"),
                                    protocol="session", min_item_support=1, force=True)
        tiny = seqrec.GRU4Rec(layers=[16], epochs=1).fit(tiny_split.train, progress=False,
                                                         threads=a.threads)
        res["recommend"] = single_call(model, split, a.calls)
        res["recommend_tiny"] = single_call(tiny, tiny_split, a.calls)

        # 2. batch vs seqrec eval, per prediction
        model_file = os.path.join(d, "gru.seqrec")
        model.save(model_file)
        out = os.path.join(d, "eval.json")
        t0 = time.perf_counter()
        subprocess.run([binary, "-q", "--threads", str(a.threads), "eval", "-m", model_file,
                        split_dir, "--json", out], check=True, capture_output=True)
        ev = json.load(open(out))
        prefixes = []
        for s in split.test.sequences():
            prefixes += [s[:j] for j in range(1, len(s))]
        prefixes = prefixes[:a.sessions]
        t_batch = median_of(lambda: model.recommend_batch(prefixes, k=20, threads=a.threads), 5)
        res["batch"] = {"sessions": len(prefixes), "batch_us_per_prediction": t_batch / len(prefixes) * 1e6,
                        "eval_us_per_prediction": ev["seconds"] / ev["n_predictions"] * 1e6,
                        "eval_predictions": ev["n_predictions"],
                        "eval_process_seconds": time.perf_counter() - t0}

    # 3. DataFrame -> Events vs parsing the same data as a file
    rng = np.random.default_rng(1)
    n = a.rows
    df = pd.DataFrame({"SessionId": np.sort(rng.integers(0, max(1, n // 5), n)),
                       "ItemId": rng.integers(0, a.items, n),
                       "Time": 1.7e9 + np.arange(n, dtype=np.float64)})
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "rows.tsv")
        df.to_csv(path, sep="\t", index=False)
        r0 = rss_mb()
        t_df = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            ev = seqrec.Events.from_dataframe(df, session="SessionId", item="ItemId", time="Time")
            t_df.append(time.perf_counter() - t0)
            if len(t_df) == 1:
                r1 = rss_mb()  # the peak of the first conversion (ru_maxrss only grows)
                # one copy of the events: items (int32), times (float64), per sequence an offset
                # (int64) and an id (std::string)
                one_copy = (ev.n_events * (4 + 8) + ev.n_sequences * (8 + 32)) / 2**20
            del ev
        t_file = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            ev = seqrec.read_events(path, cache_dir="none")
            t_file.append(time.perf_counter() - t0)
            del ev
        t_df, t_file = float(np.median(t_df)), float(np.median(t_file))
        res["dataframe"] = {"rows": n, "from_dataframe_s": t_df, "read_file_s": t_file,
                            "ratio": t_df / t_file if t_file > 0 else None,
                            "repeats": a.repeats,
                            "dataframe_mb": df.memory_usage(deep=True).sum() / 2**20,
                            "events_one_copy_mb": one_copy,
                            "peak_rss_growth_mb": r1 - r0}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
