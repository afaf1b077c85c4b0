"""Ctrl-C during training: save, then stop cleanly.

A KeyboardInterrupt can arrive anywhere, also in the middle of `optimizer.step()`, where it would
leave the weights half-updated. `deferred_interrupt()` holds Ctrl-C back for the few lines that
must run whole (the update) and delivers it right after, so the loop's `except KeyboardInterrupt`
always sees a model that is exactly "after step N", and can checkpoint it.

    with checkpoint_on_interrupt(lambda: (ckpt.save(step, ...), step)):
        while step < steps:
            loss = ...; loss.backward()
            with deferred_interrupt():
                optimizer.step()
                step += 1
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the state after the last completed step was checkpointed first
    (`checkpoint` is None on ranks that do not write). The CLI exits 130 with this message."""

    def __init__(self, checkpoint, step: int):
        where = f"; checkpoint at step {step} in {checkpoint}" if checkpoint is not None else ""
        super().__init__(f"interrupted at step {step}{where}")
        self.checkpoint, self.step = checkpoint, step


@contextlib.contextmanager
def deferred_interrupt():
    """Run the body whole: a SIGINT that arrives inside it is raised when it ends. Outside the main
    thread (where signal handlers cannot be set) the body runs unguarded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = signal.getsignal(signal.SIGINT)

    def hold(signum, frame):
        pending.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


@contextlib.contextmanager
def checkpoint_on_interrupt(save: Callable[[], tuple]):
    """On Ctrl-C in the body: `save()` -> (checkpoint path or None, step), then raise
    TrainingInterrupted with them. `save` is a closure over the loop's variables, so it saves the
    state as it is when the interrupt arrives."""
    try:
        yield
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        path, step = save()
        raise TrainingInterrupted(path, step) from None
