"""A stand-in for Hugging Face's ``spaces`` package, as ZeroGPU behaves at its worst.

On a "ZeroGPU Space" (``SPACES_ZERO_GPU=true``), ``GPU`` runs each call of the decorated function in
a freshly forked process: the arguments are pickled in and the result pickled out (so anything that
does not pickle fails here as it would there), and whatever the call created dies with the fork.
Each call appends one line to the file named by ``SPACES_STAND_IN_LOG``: the function's name and
its declared duration. Off ZeroGPU, ``GPU`` returns the function itself, as ``spaces`` does.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import traceback


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
        payload = pickle.dumps((args, kwargs))
        receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
        worker = multiprocessing.get_context("fork").Process(target=_run, args=(task, payload, send))
        worker.start()
        send.close()
        try:
            ok, result = pickle.loads(receive.recv_bytes())
        finally:
            worker.join(timeout=60)
        if not ok:
            raise RuntimeError(f"the GPU worker failed: {result}")
        if isinstance(result, BaseException):
            raise result
        return result

    return call


def _run(task, payload, send) -> None:
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
