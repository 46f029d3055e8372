"""Open-loop load: every request is sent when it is due, whether or not earlier ones have returned.

A closed loop (send, wait, send) slows down with the endpoint and hides queueing; here a pool of
``concurrency`` senders takes requests from a queue filled on schedule, and a request's latency counts
from when it was due, so waiting for a free sender or a busy endpoint both show up in p99.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

import numpy as np

from ops.rehearse.observe import Observation
from ops.rehearse.schedule import LoadProfile
from ops.rehearse.targets import Target

LIVE_REFRESH_S = 1.0
#: A last interval shorter than this share of an interval is folded into the one before it.
MIN_TAIL_SHARE = 0.25


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    profile: LoadProfile
    concurrency: int
    max_requests: int
    interval_s: float
    drain_s: float
    target_instances: int | None = None


@dataclass(frozen=True)
class Outcome:
    due: float
    finished: float
    error: str | None

    @property
    def latency_ms(self) -> float:
        return (self.finished - self.due) * 1000.0


def percentiles_ms(latencies_ms: list[float]) -> tuple[float | None, float | None]:
    """p50 and p99 with numpy's linear interpolation (bench/ summarizes latencies the same way)."""
    if not latencies_ms:
        return None, None
    values = np.asarray(latencies_ms, dtype=float)
    return round(float(np.percentile(values, 50)), 3), round(float(np.percentile(values, 99)), 3)


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    due: int = 0
    sent: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


class Rehearsal:
    """Runs one load profile against one target and records one series entry per interval."""

    def __init__(self, *, target: Target, bodies: list[bytes], options: RunOptions,
                 observe: Callable[[], Observation] | None = None, progress: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not bodies:
            raise ValueError("no request bodies")
        self.target = target
        self.bodies = bodies
        self.options = options
        self.observe = observe
        self.progress = progress
        self.clock = clock
        self._state = _State()
        self._done = threading.Event()
        self._interrupted = threading.Event()
        self.series: list[dict[str, Any]] = []
        self.outcomes: list[Outcome] = []
        self.initial: Observation | None = None

    # -- sending ---------------------------------------------------------------------------------------------------
    def _send(self, due: float, body: bytes) -> None:
        with self._state.lock:
            self._state.sent += 1
        error = self.target.invoke(body)
        outcome = Outcome(due=due, finished=self.clock(), error=error)
        with self._state.lock:
            self._state.outcomes.append(outcome)

    def run(self) -> dict[str, Any]:
        options = self.options
        if self.observe:
            self.initial = self.observe()
        start = self.clock()
        self._start = start
        reporter = threading.Thread(target=self._report_loop, name="rehearse-report", daemon=True)
        reporter.start()
        executor = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="rehearse-send")
        futures: list[Future] = []
        stopped = "completed"
        try:
            with self._ctrl_c_sets_interrupted():
                for index, offset in enumerate(options.profile.offsets(options.max_requests)):
                    due = start + offset
                    delay = due - self.clock()
                    if self._interrupted.wait(delay) if delay > 0 else self._interrupted.is_set():
                        break
                    futures.append(executor.submit(self._send, due, self.bodies[index % len(self.bodies)]))
                    with self._state.lock:
                        self._state.due += 1
            if self._interrupted.is_set():
                stopped = "interrupted"
            elif len(futures) >= options.max_requests and options.profile.expected_requests() > options.max_requests:
                stopped = "max-requests"
        except KeyboardInterrupt:  # not the main thread, so no handler of ours: Python's own
            stopped = "interrupted"
        self._finish(executor, futures, cancel_queued=stopped == "interrupted")
        reporter.join()
        end = self.clock()
        return self._report(stopped=stopped, elapsed_s=end - start)

    @contextlib.contextmanager
    def _ctrl_c_sets_interrupted(self):
        """While sending, Ctrl-C only sets ``_interrupted``: a KeyboardInterrupt raised at an arbitrary point can
        land in a finalizer run by the garbage collector, where Python prints and drops it, and the load would
        go on. A second Ctrl-C, while draining, raises as usual. Outside the main thread nothing is installed."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, lambda *_: self._interrupted.set())
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _finish(self, executor: ThreadPoolExecutor, futures: list[Future], *, cancel_queued: bool) -> None:
        """Let sent requests return (up to ``drain_s``); requests still queued after that are not sent."""
        try:
            if cancel_queued:
                for future in futures:
                    future.cancel()
            wait_futures(futures, timeout=self.options.drain_s)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting for stragglers
        executor.shutdown(wait=False, cancel_futures=True)
        self._done.set()

    # -- observing -------------------------------------------------------------------------------------------------
    def _report_loop(self) -> None:
        interval = self.options.interval_s
        previous, sent_before, number = self._start, 0, 1
        last: tuple[float, list[Outcome], int] | None = None
        while True:
            boundary = self._start + number * interval
            while not self._done.is_set():
                remaining = boundary - self.clock()
                if remaining <= 0:
                    break
                self._done.wait(min(LIVE_REFRESH_S, remaining))
                self._live_line()
            now = self.clock()
            with self._state.lock:
                outcomes, self._state.outcomes = self._state.outcomes, []
                sent = self._state.sent
            self.outcomes.extend(outcomes)
            final = self._done.is_set()
            began, sent_in = previous, sent - sent_before
            folded = final and last is not None and now - previous < MIN_TAIL_SHARE * interval
            if folded:
                # The stragglers of the last interval: fold them into it rather than plot a sliver whose
                # rate is a few requests divided by a few milliseconds.
                self.series.pop()
                began, outcomes, sent_in = last[0], last[1] + outcomes, last[2] + sent_in
            if outcomes or sent_in or not final:
                self.series.append(self._entry(began, now, outcomes, sent_in))
                self._print(self._line(self.series[-1]) + ("  (with the stragglers)" if folded else ""), final=True)
            if final:
                return
            last = (began, outcomes, sent_in)
            previous, sent_before, number = now, sent, number + 1

    def _entry(self, began: float, now: float, outcomes: list[Outcome], sent: int) -> dict[str, Any]:
        length = max(now - began, 1e-9)
        p50, p99 = percentiles_ms([outcome.latency_ms for outcome in outcomes])
        errors = sum(1 for outcome in outcomes if outcome.error)
        entry: dict[str, Any] = {"t": round(now - self._start, 3), "interval_s": round(length, 3), "sent": sent,
                                 "completed": len(outcomes), "rps": round(len(outcomes) / length, 3),
                                 "sent_rps": round(sent / length, 3), "p50_ms": p50, "p99_ms": p99,
                                 "errors": errors, "instances": None}
        if self.observe:
            observation = self.observe()
            entry["instances"] = observation.instances
            entry["variants"] = {name: vars(variant) for name, variant in observation.variants.items()}
            if observation.error:
                entry["observe_error"] = observation.error
        return entry

    # -- progress --------------------------------------------------------------------------------------------------
    def _line(self, entry: dict[str, Any]) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} ms"

        variants = entry.get("variants") or {}
        if len(variants) > 1:
            instances = "  instances " + " ".join(f"{name}={variant['instances']}" for name, variant in variants.items())
        else:
            instances = "" if entry["instances"] is None else f"  instances {entry['instances']}"
        return (f"{entry['t']:7.1f}s  sent {entry['sent_rps']:.1f}/s  done {entry['rps']:.1f}/s  "
                f"p50 {ms(entry['p50_ms'])}  p99 {ms(entry['p99_ms'])}  errors {entry['errors']}{instances}")

    def _live_line(self) -> None:
        if not (self.progress and getattr(self.progress, "isatty", lambda: False)()):
            return
        with self._state.lock:
            sent, waiting = self._state.sent, len(self._state.outcomes)
        self._print(f"{self.clock() - self._start:7.1f}s  sent {sent}  returned this interval {waiting}", final=False)

    def _print(self, text: str, *, final: bool) -> None:
        if not self.progress:
            return
        if getattr(self.progress, "isatty", lambda: False)():
            self.progress.write("\r\033[K" + text + ("\n" if final else ""))
        elif final:
            self.progress.write(text + "\n")
        self.progress.flush()

    # -- summary ---------------------------------------------------------------------------------------------------
    def _report(self, *, stopped: str, elapsed_s: float) -> dict[str, Any]:
        with self._state.lock:
            sent, due = self._state.sent, self._state.due
        p50, p99 = percentiles_ms([outcome.latency_ms for outcome in self.outcomes])
        error_kinds: dict[str, int] = {}
        for outcome in self.outcomes:
            if outcome.error:
                error_kinds[outcome.error] = error_kinds.get(outcome.error, 0) + 1
        p99s = [entry["p99_ms"] for entry in self.series if entry["p99_ms"] is not None]
        initial = self.initial.instances if self.initial else None
        counts = [(entry["t"], entry["instances"]) for entry in self.series if entry["instances"] is not None]
        first_scale_out = next((t for t, count in counts if initial is not None and count > initial), None)
        target = self.options.target_instances
        if target is None and counts and initial is not None and max(c for _, c in counts) > initial:
            target = max(c for _, c in counts)
        reached = next((t for t, count in counts if target is not None and count >= target), None)
        return {
            "stopped": stopped,
            "elapsed_s": round(elapsed_s, 3),
            "requests_due": due,
            "requests_sent": sent,
            "requests_completed": len(self.outcomes),
            "errors": sum(error_kinds.values()),
            "error_kinds": dict(sorted(error_kinds.items())),
            "achieved_rps": round(sent / elapsed_s, 3) if elapsed_s > 0 else None,
            "p50_ms": p50,
            "p99_ms": p99,
            "worst_p99_ms": max(p99s) if p99s else None,
            "initial_instances": initial,
            "max_instances": max((c for _, c in counts), default=None),
            "target_instances": target,
            "time_to_first_scale_out_s": first_scale_out,
            "time_to_target_s": reached,
        }
