"""Adaptive micro-batching on the event loop, with a bounded queue.

Requests queue as validated arrays. Whenever an inference thread is free the dispatcher
takes every queued row (up to `max_batch`) at once, so an idle model never waits and the
batch size follows the load: the longer a batch runs, the more rows the next one
collects. A partial batch waits (at most `max_wait_s`) only while other batches are
running on the remaining threads. A full queue refuses new work at once (`QueueFull`).
If a batch fails, its requests are rerun one by one, so one bad request never fails the
good requests batched with it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]


class QueueFull(Exception):
    """The queue holds `max_queue` rows already."""


@dataclass(slots=True)
class _Item:
    inputs: Arrays
    rows: int
    key: tuple[Any, ...]
    future: asyncio.Future[Arrays]
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass(slots=True)
class BatchStats:
    """Hooks for metrics; each is optional."""

    on_batch: Callable[[int], None] | None = None
    on_queue_delay: Callable[[float], None] | None = None
    on_depth: Callable[[int], None] | None = None


class Batcher:
    def __init__(self, run: Callable[[Arrays], Arrays], executor: Executor, *, max_batch: int,
                 max_wait_s: float, max_queue: int, threads: int,
                 stats: BatchStats | None = None) -> None:
        self._run = run
        self._executor = executor
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.threads = threads
        self._stats = stats or BatchStats()
        self._queue: deque[_Item] = deque()
        self.queued_rows = 0
        self.in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, inputs: Arrays, rows: int) -> asyncio.Future[Arrays]:
        """Queue one request; the future resolves to its outputs (sliced to its rows).

        Cancelling the future drops the request if it has not started yet.
        """
        if self.queued_rows + rows > self.max_queue:
            raise QueueFull(f"batch queue full ({self.queued_rows} of {self.max_queue} rows)")
        loop = asyncio.get_running_loop()
        key = tuple((k, v.shape[1:], v.dtype.str) for k, v in inputs.items())
        item = _Item(inputs, rows, key, loop.create_future())
        self._queue.append(item)
        self.queued_rows += rows
        self._idle.clear()
        self._depth()
        self._dispatch()
        return item.future

    async def drain(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def _depth(self) -> None:
        if self._stats.on_depth:
            self._stats.on_depth(self.queued_rows)

    def _dispatch(self) -> None:
        while self._queue and self.in_flight < self.threads:
            if self.in_flight and self.queued_rows < self.max_batch:
                wait = self.max_wait_s - (time.perf_counter() - self._queue[0].enqueued)
                if wait > 0:  # others are running: let this batch grow a little
                    if self._timer is None:
                        loop = asyncio.get_running_loop()
                        self._timer = loop.call_later(wait, self._on_timer)
                    return
            items = self._take()
            if items:
                self._start(items)
        if not self._queue and not self.in_flight:
            self._idle.set()

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _take(self) -> list[_Item]:
        items: list[_Item] = []
        rows = 0
        head_key = None
        skipped: list[_Item] = []
        while self._queue:
            item = self._queue.popleft()
            if item.future.done():  # timed out or cancelled while queued
                self.queued_rows -= item.rows
                continue
            if head_key is None:
                head_key = item.key
            if item.key != head_key or rows + item.rows > self.max_batch:
                skipped.append(item)
                if rows + item.rows > self.max_batch:
                    break
                continue
            items.append(item)
            rows += item.rows
            self.queued_rows -= item.rows
        self._queue.extendleft(reversed(skipped))
        self._depth()
        return items

    def _start(self, items: list[_Item]) -> None:
        self.in_flight += 1
        now = time.perf_counter()
        if self._stats.on_queue_delay:
            for item in items:
                self._stats.on_queue_delay(now - item.enqueued)
        if self._stats.on_batch:
            self._stats.on_batch(sum(i.rows for i in items))
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, self._execute, items)
        fut.add_done_callback(lambda f: self._finish(items, f))

    def _execute(self, items: list[_Item]) -> list[Arrays | BaseException]:
        """Runs on an inference thread: one model call, or one per item after a failure."""
        if len(items) == 1:
            inputs = items[0].inputs
        else:
            inputs = {k: np.concatenate([i.inputs[k] for i in items]) for k in items[0].inputs}
        try:
            out = self._run(inputs)
        except Exception as exc:  # isolate: rerun each request alone
            if len(items) == 1:
                return [exc]
            results: list[Arrays | BaseException] = []
            for item in items:
                try:
                    results.append(self._run(item.inputs))
                except Exception as one:
                    results.append(one)
            return results
        if len(items) == 1:
            return [out]
        results, start = [], 0
        for item in items:
            results.append({k: v[start:start + item.rows] for k, v in out.items()})
            start += item.rows
        return results

    def _finish(self, items: list[_Item], fut: asyncio.Future[Any]) -> None:
        self.in_flight -= 1
        exc = fut.exception()
        results = [exc] * len(items) if exc is not None else fut.result()
        for item, result in zip(items, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
        self._dispatch()
