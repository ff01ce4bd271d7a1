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

In the parent, granian's own handlers set a :class:`threading.Event`, whose lock is not
reentrant: a signal that lands while the main thread is inside that event's ``wait`` (its
serve loop, entered right after the last worker is spawned) runs the handler inside the
lock the handler then asks for, and the parent hangs for good with its workers serving.
:func:`relay_stops` makes the handlers only note the signal and hand the wake-up to a
thread of its own.

A SIGTERM that reaches a worker in the first instants after its fork is lost: CPython
clears the signals that arrived before its after-fork handling (they would otherwise be
handled twice). The parent stops all workers at once, so a stop that came as the last worker
forked left it serving until the kill after the grace time. So the parent also marks a stop
on a pipe its workers inherit (:func:`relay_stops`), and a worker that finds it marked when
it has started stops itself (:func:`release_stops`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import select
import signal
import threading
from typing import Any

__all__ = [
    "hold_stops",
    "parent_stopping",
    "pass_on_stop",
    "relay_stops",
    "release_stops",
    "remember_stops",
    "stopping",
]

log = logging.getLogger("attest.serve")

#: The stop signals.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
#: After lifespan start-up, how long until a worker's held stop signals are let through (the
#: timer fires once granian's serve loop runs, which is after its serve call).
RELEASE_DELAY = 0.1

#: The read end of the parent's stop mark (see relay_stops), inherited by its workers.
_stop_mark: int | None = None

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


def relay_stops(server: Any) -> None:
    """Before granian serves: its main-process handlers (SIGTERM/SIGINT stop, SIGHUP
    reloads) become a :class:`_Relay`'s, which set granian's flag and leave the wake-up to
    a thread."""
    global _stop_mark  # one per process; its forked workers read it
    _stop_mark, write_end = os.pipe()
    relay = _Relay(server, write_end)
    threading.Thread(target=relay.wake, name="attest-stop-relay", daemon=True).start()
    # granian installs self.signal_handler_interrupt/_reload in startup(): these, then.
    server.signal_handler_interrupt = relay.interrupt
    server.signal_handler_reload = relay.reload


class _Relay:
    """The handlers put a wake-up on a queue whose ``put`` may interrupt itself
    (:class:`queue.SimpleQueue`); :meth:`wake`, in its own thread, wakes the serve loop."""

    def __init__(self, server: Any, stop_mark: int) -> None:
        self.server = server
        #: The write end of the stop mark: a byte on it, once, when a stop came.
        self.stop_mark = stop_mark
        #: Whether a stop came (to this process, or to the parent before it forked this one).
        self.interrupted = False
        self.wakeups: queue.SimpleQueue[bool] = queue.SimpleQueue()

    def interrupt(self, *_: object) -> None:
        self.interrupted = True
        self.server.interrupt_signal = True
        self.wakeups.put(True)

    def reload(self, *_: object) -> None:
        self.server.reload_signal = True
        self.wakeups.put(False)

    def wake(self) -> None:
        marked = False
        while True:
            stop = self.wakeups.get()
            if stop and not marked:
                # Before the serve loop wakes: marked before any worker is told to stop.
                os.write(self.stop_mark, b"s")
                marked = True
            self.server.main_loop_interrupt.set()


def hold_stops() -> None:
    """In a worker, first thing: keep SIGTERM/SIGINT pending while it starts."""
    inherited = signal.getsignal(signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    # A signal that came before this, to the inherited handler (a _Relay's), was noted.
    if getattr(getattr(inherited, "__self__", None), "interrupted", False):
        os.kill(os.getpid(), signal.SIGTERM)  # pending until released


def release_stops() -> None:
    """At lifespan start-up complete: let the held signals through once the worker serves;
    one held back is delivered then and the worker shuts down like any other. A stop the
    parent marked is one this worker may have lost: it sends it to itself first."""
    asyncio.get_running_loop().call_later(RELEASE_DELAY, _release)


def parent_stopping() -> bool:
    """Whether the parent marked a stop (the mark is left for the other workers to see)."""
    if _stop_mark is None:
        return False
    readable, _, _ = select.select([_stop_mark], [], [], 0)
    return bool(readable)


def _release() -> None:
    if parent_stopping():
        os.kill(os.getpid(), signal.SIGTERM)  # pending until the unblock below
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
