"""Python function calls per request of the attest workers under wrk, by package: a measure
of the interpreter's work that, unlike req/s or even CPU seconds, does not move with the
shared machine's load (issue 11: the workers' CPU is almost all the interpreter's).

Run: python bench/bench_calls.py [--rows issued,denied] [--duration 8] [--connections 32]
                                 [--top 12] [--functions 0]

Starts ``attest serve`` as bench/bench_load.py does, with bench/_profiled on PYTHONPATH
(its sitecustomize starts and stops cProfile in each process on SIGUSR2), warms each row
up with wrk, profiles both workers during a wrk cell and prints, per answered request, the
calls made and their profiled time (cProfile's own cost included, so about twice the real
time: compare builds by calls), overall and for the packages that made the most. A
coroutine's every resumption counts as a call. Requests are counted by the request-log
middleware's id lookup, one per request.
"""

from __future__ import annotations

import argparse
import collections
import os
import pstats
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import bench_load
from _server import attest_server

PROFILED = Path(__file__).parent / "_profiled"


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


def _package(filename: str) -> str:
    if filename == "~":
        return "(built-in)"
    parts = Path(filename).parts
    if "attest" in parts:
        inner = parts[parts.index("attest") :]
        return "/".join(inner[:2]) if len(inner) > 2 else inner[0]
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    return "(standard library)" if "python3" in filename else Path(filename).name


def summary(files: list[Path], top: int, functions: int = 0) -> str:
    stats: dict[Any, Any] = pstats.Stats(*map(str, files)).stats  # type: ignore[attr-defined]
    requests = sum(v[1] for k, v in stats.items() if k[2] == "request_id_of")
    if not requests:
        return "no request was profiled"
    calls = collections.Counter[str]()
    spent = collections.Counter[str]()
    for (filename, _line, _name), (_cc, ncalls, tottime, _ct, _callers) in stats.items():
        calls[_package(filename)] += ncalls
        spent[_package(filename)] += tottime
    lines = [
        f"{requests:,} requests: {sum(calls.values()) / requests:,.0f} calls and "
        f"{1e6 * sum(spent.values()) / requests:,.0f} us profiled per request; by package:"
    ]
    for package, count in calls.most_common(top):
        each = 1e6 * spent[package] / requests
        lines.append(f"    {count / requests:7.1f} calls {each:7.1f} us  {package}")
    if functions:
        lines.append("  the functions with the most own time per request:")
        ranked = sorted(stats.items(), key=lambda item: -item[1][2])[:functions]
        for (filename, line, name), (_cc, ncalls, tottime, _ct, _callers) in ranked:
            where = f"{_package(filename)}:{Path(filename).name}:{line}"
            each = 1e6 * tottime / requests
            lines.append(f"    {ncalls / requests:7.1f} calls {each:7.1f} us  {name} ({where})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="issued,denied")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--subjects", type=int, default=50)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--functions", type=int, default=0, help="also list the top N functions")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_calls: wrk is missing (apt-get install -y wrk)", file=sys.stderr)
        return 2
    out = Path(tempfile.mkdtemp(prefix="attest-calls-"))
    os.environ["BENCH_CPROFILE_DIR"] = str(out)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROFILED), os.environ.get("PYTHONPATH", "")) if p
    )
    settings = {"log_level": "INFO", "client_rate_limit": "100000000"}
    with attest_server(**settings) as server:
        key, eligible, ineligible = bench_load._seed(server, args.subjects)
        cases = bench_load._cases(server, key, eligible, ineligible)
        workers = _children(server.pid)
        print(f"{args.connections} connections, {args.duration:g} s a row, {len(workers)} workers")
        for word in args.rows.split(","):
            case = next(c for c in cases if word.strip() in c.name)
            script = bench_load._script(case, key, out)
            bench_load._wrk(server.base, case, script, args.connections, 2, 2)  # warm-up
            for old in out.glob("*.prof"):
                old.unlink()
            cell = threading.Thread(
                target=bench_load._wrk,
                args=(server.base, case, script, args.connections, 2, args.duration + 2),
            )
            cell.start()
            time.sleep(1)
            for pid in workers:
                os.kill(pid, signal.SIGUSR2)
            time.sleep(args.duration)
            for pid in workers:
                os.kill(pid, signal.SIGUSR2)
            cell.join()
            deadline = time.monotonic() + 30
            while len(list(out.glob("*.prof"))) < len(workers) and time.monotonic() < deadline:
                time.sleep(0.2)
            print(f"- {case.name}: {summary(sorted(out.glob('*.prof')), args.top, args.functions)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
