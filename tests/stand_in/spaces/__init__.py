"""A stand-in for Hugging Face's ``spaces`` package, as ZeroGPU behaves at its worst.

On a "ZeroGPU Space" (``SPACES_ZERO_GPU=true``), ``GPU`` runs each call of the decorated function in
a freshly forked process: the arguments are pickled in and the result pickled out (so anything that
does not pickle fails here as it would there), and whatever the call created dies with the fork.
Each call appends one line to the file named by ``SPACES_STAND_IN_LOG``: the function's name and
its declared duration. Off ZeroGPU, ``GPU`` returns the function itself, as ``spaces`` does.

A worker with no answer after ``OVERRUN`` times its duration (at least ``MIN_DEADLINE_S``) is made
to print every thread's stack to stderr (``SIGUSR1``, through `faulthandler`), then killed, and the
call raises "GPU task aborted", as ZeroGPU's does when its worker dies: a worker stuck after the
fork fails its test, with the stack where it stuck, instead of hanging the run.
"""

from __future__ import annotations

import faulthandler
import functools
import multiprocessing
import os
import pickle
import signal
import traceback

OVERRUN = 2
MIN_DEADLINE_S = 60
DUMP_WAIT_S = 5
"""Seconds a stuck worker is given to print its stacks before it is killed."""


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
        worker = fork.Process(target=_run, args=(task, payload, send))
        worker.start()
        send.close()
        stuck = False
        try:
            answer = receive.recv_bytes() if receive.poll(deadline_s) else None
            stuck = answer is None
        except EOFError:  # the worker ended without an answer
            answer = None
        finally:
            receive.close()
            if stuck:
                os.kill(worker.pid, signal.SIGUSR1)  # its stacks, to stderr
            worker.join(timeout=DUMP_WAIT_S)
            if worker.is_alive():
                worker.kill()
                worker.join()
        if answer is None:
            why = "it was stuck; its stacks are on stderr" if stuck else f"its worker exited with {worker.exitcode}"
            raise RuntimeError(f"GPU task aborted: {task.__name__} gave no answer within {deadline_s:g} s ({why})")
        ok, result = pickle.loads(answer)
        if not ok:
            raise RuntimeError(f"the GPU worker failed: {result}")
        if isinstance(result, BaseException):
            raise result
        return result

    return call


def _run(task, payload, send) -> None:
    # Not dump_traceback_later: its watchdog's lock may be held in the parent (pytest's
    # faulthandler_timeout arms one), and a fork's child would wait on it forever.
    faulthandler.register(signal.SIGUSR1, file=2, all_threads=True)
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
