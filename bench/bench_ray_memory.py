"""Where the Ray map actor's memory goes: its resident set sampled through a run, split by kind.

``python bench/bench_ray_memory.py DIR FILES`` audits the first FILES Parquet files of
DIR/parquet (written by ``bench_ray_large.py generate``: 1,000,000 rows and four shards a file)
on Ray with one worker, as ``bench_ray_large.py run DIR ray1`` does, while a thread samples every
process the run started from /proc every 0.2 s: VmRSS and its parts, RssAnon (the heap: Python
objects, Arrow buffers, malloc arenas), RssFile (mapped files) and RssShmem (pages of Ray's
shared-memory object store the process touched). It prints each part's peak for the map actor
and the other Ray processes, and the actor's resident set over the run, so a growth with the
number of shards shows which kind grows. Environment variables given as NAME=VALUE after FILES
(e.g. MALLOC_ARENA_MAX=2) are set for the run, Ray's workers included.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")


def descendants(root: int) -> list[int]:
    """Every process under ``root`` (Ray's raylet and workers are started by the driver in local mode)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
    family, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        family.extend(children)
        frontier.extend(children)
    return family


def sample(pid: int) -> tuple[str, dict[str, float]] | None:
    """(command, {field: MiB}) of one process, or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    values = {}
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        if name in FIELDS:
            values[name] = int(rest.split()[0]) / 1024
    return (command[:60], values) if "VmRSS" in values else None  # an exiting process has no memory fields


class Sampler(threading.Thread):
    """Samples the descendants of this process every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stop = threading.Event()
        self.peaks: dict[int, dict] = {}  # pid -> {"command", field: peak, "at_peak": {...}}
        self.series: dict[int, list[tuple[float, dict[str, float]]]] = {}
        self.start_time = time.perf_counter()

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.perf_counter() - self.start_time
            for pid in descendants(os.getpid()):
                found = sample(pid)
                if found is None:
                    continue
                command, values = found
                peak = self.peaks.setdefault(pid, {"command": command, "at_peak": values})
                if command:  # Ray renames its workers once they hold an actor; a dying one has none
                    peak["command"] = command
                for field, value in values.items():
                    peak[field] = max(peak.get(field, 0.0), value)
                if values.get("VmRSS", 0.0) >= peak["at_peak"].get("VmRSS", 0.0):
                    peak["at_peak"] = values
                self.series.setdefault(pid, []).append((now, values))
            self.stop.wait(self.interval)


def run(root: Path, files: int) -> None:
    from bench_ray_large import ENGINES

    from audit import load_config, run_audit
    from tests.decision_log import spec

    folder = Path(tempfile.mkdtemp(prefix=f"ray-memory-{files}-"))
    (folder / "parquet").mkdir()
    for source in sorted((root / "parquet").glob("*.parquet"))[:files]:
        (folder / "parquet" / source.name).symlink_to(source)
    import ray

    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False,
             configure_logging=False, _temp_dir=str(folder / "ray"))
    sampler = Sampler()
    sampler.start()
    start = time.perf_counter()
    result = run_audit(load_config(spec(folder, "parquet", engine=ENGINES["ray1"], name="ray1.yaml", bootstrap=200)))
    seconds = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    ray.shutdown()
    print(f"## {files} files, {result.data['rows_read']:,} rows, {result.data['shards']} shards: "
          f"{seconds:.0f} s, load {os.getloadavg()[0]:.1f}; env "
          f"{' '.join(a for a in sys.argv[3:]) or '(none)'}\n")
    report(sampler)


def report(sampler: Sampler) -> None:
    print("| process | peak VmRSS | RssAnon at peak | RssFile at peak | RssShmem at peak | peak RssAnon | peak RssShmem |")
    print("|---|---|---|---|---|---|---|")
    ranked = sorted(sampler.peaks.items(), key=lambda item: -item[1].get("VmRSS", 0.0))
    for pid, peak in ranked[:6]:
        at = peak["at_peak"]
        print(f"| {peak['command'][:40]} | {peak.get('VmRSS', 0):.0f} | {at.get('RssAnon', 0):.0f} | "
              f"{at.get('RssFile', 0):.0f} | {at.get('RssShmem', 0):.0f} | {peak.get('RssAnon', 0):.0f} | "
              f"{peak.get('RssShmem', 0):.0f} |")
    actor = next((pid for pid, peak in ranked if "_ShardSummarizer" in peak["command"]), None)
    if actor is None:
        return
    series = sampler.series[actor]
    print("\nMap actor over the run (MiB): time s, RSS = anon + file + shmem")
    step = max(1, len(series) // 12)
    for moment, values in series[::step] + series[-1:]:
        print(f"  {moment:6.1f}  {values.get('VmRSS', 0):6.0f} = {values.get('RssAnon', 0):5.0f} + "
              f"{values.get('RssFile', 0):4.0f} + {values.get('RssShmem', 0):4.0f}")


if __name__ == "__main__":
    for assignment in sys.argv[3:]:
        name, _, value = assignment.partition("=")
        os.environ[name] = value  # before ray.init: Ray's workers inherit the driver's environment
    run(Path(sys.argv[1]), int(sys.argv[2]))
