"""Stopping a process this code started: the one helper the stack, the benchmark and the tests use."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process(process: subprocess.Popen, first_signal: int = signal.SIGTERM, timeout_s: float = 25.0,
                 group: bool = False) -> int:
    """Send ``first_signal``, wait up to ``timeout_s``, then SIGKILL; reap the process and return its exit status.

    ``group=True`` is for a process started with ``start_new_session=True``: both signals go to its whole
    process group, as a terminal's Ctrl-C does, so no child (Triton's stub processes, the processes under
    ``make``) is left running. A process that has already exited is only reaped.
    """
    def send(number: int) -> None:
        try:
            if group:
                os.killpg(process.pid, number)
            else:
                process.send_signal(number)
        except ProcessLookupError:  # exited between the check and the signal
            pass

    if process.poll() is None:
        send(first_signal)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
    return process.wait()
