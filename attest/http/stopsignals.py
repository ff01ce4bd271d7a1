"""SIGTERM and SIGINT while `attest serve` starts (attest/cli.py), before granian handles them.

The parent remembers a stop until granian's handlers are in place (:func:`remember_stops`)
and checks it between its start-up steps (:func:`stopping`); one that came after the last
check is passed on to granian by a start-up hook (:func:`pass_on_stop`). Not an exception
from the handler: raised inside a driver's callback it can be swallowed as unraisable, and
the server would start anyway.

A worker holds the stop signals back while it starts (:func:`hold_stops`) and lets them
through once it serves (:func:`release_stops`): granian's forked workers inherit the
parent's handlers (which only wake the parent's copy of its loop in this process) until
they install their own, and a signal set before granian serves is not seen either, so a
worker stopped while starting was killed after the grace time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

__all__ = ["hold_stops", "pass_on_stop", "release_stops", "remember_stops", "stopping"]

log = logging.getLogger("attest.serve")

#: The stop signals.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
#: After lifespan start-up, how long until a worker's held stop signals are let through (the
#: timer fires once granian's serve loop runs, which is after its serve call).
RELEASE_DELAY = 0.1

#: The stops the parent received before granian took the signals over.
_requested: list[int] = []


def remember_stops() -> None:
    """In the parent, first thing: SIGTERM/SIGINT are remembered, not acted on."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: _requested.append(signum))


def stopping() -> bool:
    """Whether a stop came: start-up then ends (the embedded database stopped, exit 0)."""
    if _requested:
        log.info("stopping before serving (%s)", signal.Signals(_requested[0]).name)
    return bool(_requested)


def pass_on_stop() -> None:
    """A granian start-up hook (its own handlers are in place): a stop remembered since the
    last check is sent again, to granian, which stops its workers as soon as they start."""
    if _requested:
        os.kill(os.getpid(), _requested[0])


def hold_stops() -> None:
    """In a worker, first thing: keep SIGTERM/SIGINT pending while it starts."""
    inherited = signal.getsignal(signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    # A signal that came before this, to the inherited handler, set its server's flag.
    if getattr(getattr(inherited, "__self__", None), "interrupt_signal", False):
        os.kill(os.getpid(), signal.SIGTERM)  # pending until released


def release_stops() -> None:
    """At lifespan start-up complete: let the held signals through once the worker serves;
    one held back is delivered then and the worker shuts down like any other."""
    asyncio.get_running_loop().call_later(
        RELEASE_DELAY, signal.pthread_sigmask, signal.SIG_UNBLOCK, STOP_SIGNALS
    )
