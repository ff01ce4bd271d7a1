"""Loaded by every Python process of a server that bench/bench_calls.py starts (it puts this
directory on PYTHONPATH): with BENCH_CPROFILE_DIR set, SIGUSR2 starts cProfile in the
process and the next SIGUSR2 writes its statistics to BENCH_CPROFILE_DIR/<pid>.prof."""

from __future__ import annotations

import os
import signal

_DIR = os.environ.get("BENCH_CPROFILE_DIR")

if _DIR:
    import cProfile

    _running: list[cProfile.Profile] = []

    def _toggle(_signum: int, _frame: object) -> None:
        if not _running:
            profile = cProfile.Profile()
            _running.append(profile)
            profile.enable()
            return
        profile = _running.pop()
        profile.disable()
        profile.dump_stats(os.path.join(_DIR, f"{os.getpid()}.prof"))

    signal.signal(signal.SIGUSR2, _toggle)
