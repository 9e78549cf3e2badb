"""A stand-in for Hugging Face's ``spaces`` package, as ZeroGPU behaves at its worst.

On a "ZeroGPU Space" (``SPACES_ZERO_GPU=true``), ``GPU`` runs each call of the decorated function in
a freshly forked process: the arguments are pickled in and the result pickled out (so anything that
does not pickle fails here as it would there), and whatever the call created dies with the fork.
Each call appends one line to the file named by ``SPACES_STAND_IN_LOG``: the function's name and
its declared duration. Off ZeroGPU, ``GPU`` returns the function itself, as ``spaces`` does.

A worker with no answer after ``OVERRUN`` times its duration (at least ``MIN_DEADLINE_S``) prints
every thread's stack to stderr and ends, and the call raises "GPU task aborted", as ZeroGPU's
does when its worker dies: a worker stuck after the fork fails its test, with the stack where it
stuck, instead of hanging the run.
"""

from __future__ import annotations

import faulthandler
import functools
import multiprocessing
import os
import pickle
import traceback

OVERRUN = 2
MIN_DEADLINE_S = 60
GRACE_S = 30
"""Seconds the caller waits past the deadline for the worker's own exit (and its stacks)."""


def _zero_gpu() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true", "yes", "on")


def GPU(task=None, *, duration=None, size=None):  # the name spaces gives it
    if task is None:
        return functools.partial(GPU, duration=duration, size=size)
    if not _zero_gpu():
        return task

    @functools.wraps(task)
    def call(*args, **kwargs):
        seconds = duration(*args, **kwargs) if callable(duration) else (duration or 60)
        log = os.environ.get("SPACES_STAND_IN_LOG")
        if log:
            with open(log, "a") as file:
                file.write(f"{task.__name__} duration={seconds}\n")
        deadline_s = max(OVERRUN * seconds, MIN_DEADLINE_S)
        payload = pickle.dumps((args, kwargs))
        fork = multiprocessing.get_context("fork")
        receive, send = fork.Pipe(duplex=False)
        worker = fork.Process(target=_run, args=(task, payload, send, deadline_s))
        worker.start()
        send.close()
        try:
            answer = receive.recv_bytes() if receive.poll(deadline_s + GRACE_S) else None
        except EOFError:  # the worker ended without an answer
            answer = None
        finally:
            receive.close()
            worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()
                worker.join()
        if answer is None:
            raise RuntimeError(
                f"GPU task aborted: {task.__name__} gave no answer within {deadline_s:g} s "
                f"(its worker's exit code: {worker.exitcode}; its stacks, if it stuck, are on stderr)"
            )
        ok, result = pickle.loads(answer)
        if not ok:
            raise RuntimeError(f"the GPU worker failed: {result}")
        if isinstance(result, BaseException):
            raise result
        return result

    return call


def _run(task, payload, send, deadline_s: float) -> None:
    faulthandler.dump_traceback_later(deadline_s, exit=True)  # every thread's stack, then exit(1)
    try:
        args, kwargs = pickle.loads(payload)
        try:
            reply = (True, task(*args, **kwargs))
        except Exception as error:  # the caller re-raises it, as spaces does
            reply = (True, error)
        send.send_bytes(pickle.dumps(reply))
    except BaseException:
        send.send_bytes(pickle.dumps((False, traceback.format_exc())))
    finally:
        send.close()
        os._exit(0)
