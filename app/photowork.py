"""Where the photo network's work runs: a thread of its own at a lower priority than the event
loop and the frame reader. A 224x224 photo is 25-70 ms of a core; run in a request's thread at
normal priority, five photos a second stretched the drawing frames' p99 by 1.6x on two cores
(bench/bench_photos.py). Behind the drawing, they take what CPU the classroom leaves."""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("neuronlab")


def _lower_priority(niceness: int) -> None:
    """This thread only (Linux keeps a nice value per thread)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed: normal priority
        log.info("photo work at normal priority: %s", exc)


class PhotoWork:
    """Call it with a function and its arguments: runs there, returns its result (or raises)."""

    def __init__(self, threads: int = 1, niceness: int = 10):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="photos", initializer=_lower_priority,
                                        initargs=(niceness,))

    def __call__(self, fn, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
