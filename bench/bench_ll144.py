"""The LL144 tables on 10,000,000 rows with the intersectional cross: time and memory.

Rows: sex (Male, Female, missing) and race/ethnicity (seven EEO-1 categories plus "Decline to
state", declared unknown) as string columns, and a binary selection decision, seeded. Ours is the
whole ll144 check after the data is loaded: category codes from the strings, one bincount over
the cross, the three tables, exact intervals, tests, both missing-data bounds and every
measurement (``ll144.category_codes`` + ``ll144.measure_rows``). Beside it:

- the cost floor of one pass: ``pandas.factorize`` of both string columns (every row's string
  must be hashed once) plus one ``numpy.bincount`` over the crossed codes;
- the peer an auditor would write: ``DataFrame.groupby([sex, race]).selected.agg(size, sum)``,
  which gives only the intersectional counts (no marginals, rates, intervals or bounds).

Best of three runs each; peak memory of ours by tracemalloc (numpy reports its buffers to it).
Usage: python bench/bench_ll144.py [ROWS]
"""

from __future__ import annotations

import sys
import time
import tracemalloc

import numpy as np
import pandas as pd

from audit.profiles import ll144
from audit.profiles.settings import CategoryColumn

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
RUNS = 3
SEED = 20261201
RACES = ["Hispanic or Latino", "White", "Black or African American", "Native Hawaiian or Pacific Islander", "Asian",
         "Native American or Alaska Native", "Two or More Races"]
SPECS = [CategoryColumn(column="sex", categories=["Male", "Female"]),
         CategoryColumn(column="race", categories=RACES, unknown=["Decline to state"])]


def make_rows(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    sex = np.array(["Male", "Female", None], dtype=object)[rng.choice(3, n, p=[0.49, 0.48, 0.03])]
    race = np.array([*RACES, "Decline to state"], dtype=object)[rng.choice(8, n, p=[.18, .4, .14, .01, .12, .01, .04, .10])]
    return pd.DataFrame({"sex": pd.array(sex, dtype="str"), "race": pd.array(race, dtype="str"),
                         "selected": (rng.random(n) < 0.3).astype(np.int64)})


def ours(frame: pd.DataFrame) -> list:
    codes = [ll144.category_codes(frame[spec.column], spec) for spec in SPECS]
    options = ll144.TableOptions("selection", 0.95, False, 30)
    return ll144.measure_rows(codes, ["sex", "race_ethnicity"], SPECS, options, decisions=frame["selected"].to_numpy(),
                              classes=["no", "yes"], positive=1)


def floor(frame: pd.DataFrame) -> np.ndarray:
    sex, sex_levels = pd.factorize(frame["sex"])
    race, race_levels = pd.factorize(frame["race"])
    cell = (sex.astype(np.int64) + 1) * (len(race_levels) + 1) + race + 1
    return np.bincount(cell * 2 + frame["selected"].to_numpy())


def peer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby(["sex", "race"], dropna=False, observed=True)["selected"].agg(["size", "sum"])


def best(function, frame: pd.DataFrame) -> tuple[float, object]:
    times, out = [], None
    for _ in range(RUNS):
        start = time.perf_counter()
        out = function(frame)
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    frame = make_rows(ROWS)
    ours_time, measurements = best(ours, frame)
    floor_time, _ = best(floor, frame)
    peer_time, grouped = best(peer, frame)
    # the same intersectional counts as the peer's
    applicants = {tuple(m.group.values()): m.value for m in measurements if m.metric == "applicants"
                  and m.params["table"] == "intersectional"}
    for (sex, race), row in grouped.iterrows():
        if (sex, race) in applicants:
            assert applicants[(sex, race)] == row["size"], (sex, race)
    tracemalloc.start()
    ours(frame)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"LL144 tables on {ROWS:,} rows (sex x race/ethnicity, {len(measurements)} measurements), best of {RUNS}\n")
    print("| step | time (s) | vs one pass |\n|---|---|---|")
    print(f"| ours: codes + tables + intervals + tests + bounds | {ours_time:.3f} | {ours_time / floor_time:.2f}x |")
    print(f"| one pass (factorize both columns + one bincount) | {floor_time:.3f} | 1.00x |")
    print(f"| pandas groupby size/sum (counts only) | {peer_time:.3f} | {peer_time / floor_time:.2f}x |")
    print(f"\nPeak memory of ours (tracemalloc): {peak:.0f} MiB for {ROWS:,} rows "
          f"({peak * 2**20 / ROWS:.1f} bytes per row).")


if __name__ == "__main__":
    main()
