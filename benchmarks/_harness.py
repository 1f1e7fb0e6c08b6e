"""What every script in ``benchmarks/`` shares: a quiet machine, interleaved rounds, medians, ratios, a record.

A benchmark on a shared machine measures the other jobs as much as the code.  Every script here
therefore goes through :class:`Harness`:

* **a quiet machine before each block**: :meth:`Harness.block` polls the 1-minute load average
  (``os.getloadavg()``) until it is below ``--load-threshold`` (0.6), for at most ``--wait-timeout``
  seconds; if it cannot get one it says so, and the block is recorded with ``quiet: false`` and the
  load it ran at.  ``--no-wait`` (or ``KERASMER_BENCH_NO_WAIT=1``) skips the wait and records that;
* **interleaved configurations**: a block runs its configurations A, B, ... in rounds ABAB..., so a
  change of load or of CPU clock hits every configuration alike;
* **medians and ratios**: each block prints the median over the rounds per configuration and its
  ratio to the block's first configuration (the baseline);
* **a record**: the machine (CPU model, cores, Python, TensorFlow, Keras, oneDNN, bf16 units) and,
  beside each row, the load before, during and after the block, written as JSON with ``--json``.

``--quick`` is for the scripts' own tests (``tests/test_benchmarks.py``): each script then runs a
tiny configuration in seconds; its numbers mean nothing.

Example:
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser)
    >>> harness = Harness(parser.parse_args(["--no-wait", "--rounds", "3"]), "demo")  # doctest: +SKIP
    >>> block = harness.block("sum", {"short": lambda: sum(range(10)), "long": lambda: sum(range(1000))},
    ...                       unit="s", timed=True)  # doctest: +SKIP
    >>> sorted(block["configs"])  # doctest: +SKIP
    ['long', 'short']
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

# Run from a checkout without installing: the scripts import _harness before kerasmer.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NO_WAIT_ENV = "KERASMER_BENCH_NO_WAIT"
LOAD_THRESHOLD = 0.6  # 1-minute load average: below it, the machine counts as quiet
WAIT_TIMEOUT_S = 1800.0
POLL_S = 15.0


def add_arguments(parser: argparse.ArgumentParser, *, rounds: int = 5) -> None:
    """Add the options every benchmark shares to ``parser``.

    Args:
        parser: the script's parser.
        rounds: the script's default number of interleaved rounds per block.

    Example:
        >>> add_arguments(argparse.ArgumentParser())
    """
    parser.add_argument("--quick", action="store_true",
                        help="tiny inputs and few rounds: runs in seconds, to check that the script works")
    parser.add_argument("--no-wait", action="store_true",
                        help=f"do not wait for a quiet machine (also: {NO_WAIT_ENV}=1); recorded in the output")
    parser.add_argument("--load-threshold", type=float, default=LOAD_THRESHOLD,
                        help="1-minute load average under which the machine is quiet (default %(default)s)")
    parser.add_argument("--wait-timeout", type=float, default=WAIT_TIMEOUT_S,
                        help="seconds to wait for a quiet machine before each block (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=rounds,
                        help="interleaved rounds per block; the median is reported (default %(default)s)")
    parser.add_argument("--json", default=None, help="write the machine, the blocks and every sample here")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, or ``platform.processor()`` elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """What a benchmark figure depends on: CPU, cores, memory, Python, TensorFlow, Keras, oneDNN, GPUs.

    Returns:
        A JSON-serialisable dict.

    Example:
        >>> "cpu" in machine_info()
        True
    """
    info = {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "platform": platform.platform()}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    if "tensorflow" in sys.modules or "keras" in sys.modules:
        # Only when the script uses TensorFlow: kerasmer's record of the numeric stack.
        from kerasmer.core.precision import precision_environment

        env = precision_environment(probe_onednn=False)
        info.update({k: env[k] for k in ("tensorflow", "keras", "onednn_enabled", "cpu_bf16", "gpus",
                                         "bf16_conv3d_guard", "tf_enable_onednn_opts")})
    for name in ("torch",):
        if name in sys.modules:
            info[name] = getattr(sys.modules[name], "__version__", None)
    return info


def load1() -> float:
    """The 1-minute load average (0.0 where the system has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return 0.0


def wait_for_quiet(threshold: float, timeout: float, *, poll: float = POLL_S, enabled: bool = True,
                   clock=time.monotonic, sleep=time.sleep, load=load1) -> dict:
    """Wait until the 1-minute load average is below ``threshold``, for at most ``timeout`` seconds.

    Args:
        threshold: the load under which the machine counts as quiet.
        timeout: the longest wait in seconds.
        poll: seconds between two readings.
        enabled: False skips the wait (it is recorded as skipped).
        clock, sleep, load: injectable for tests.

    Returns:
        ``{"quiet": bool or None (not waited for), "load": the load when the wait ended,
        "waited_s": seconds waited, "threshold": threshold}``.

    Example:
        >>> wait_for_quiet(0.6, 0, enabled=False)["quiet"] is None
        True
    """
    start = clock()
    current = load()
    if not enabled:
        return {"quiet": None, "load": current, "waited_s": 0.0, "threshold": threshold}
    while current >= threshold and clock() - start < timeout:
        sleep(min(poll, max(0.0, timeout - (clock() - start))))
        current = load()
    return {"quiet": current < threshold, "load": current, "waited_s": round(clock() - start, 1),
            "threshold": threshold}


def print_table(header: str, rows) -> None:
    """Print a markdown table: ``header`` like ``"| a | b |"`` (its alignment row is made here), then ``rows``
    of cell values (already formatted)."""
    cells = header.strip().strip("|").split("|")
    print("\n" + header)
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(cells))) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def _median(values: list) -> float:
    return statistics.median(values) if values else float("nan")


class Harness:
    """One benchmark run: blocks of interleaved configurations, each after a wait for a quiet machine.

    Args:
        args: the parsed options of :func:`add_arguments` (``quick``, ``no_wait``, ``load_threshold``,
            ``wait_timeout``, ``rounds``, ``json``).
        script: the script's name, for the record.

    Example:
        >>> h = Harness(argparse.Namespace(no_wait=True, quick=True, rounds=2, json=None,
        ...                                load_threshold=0.6, wait_timeout=0), "demo")  # doctest: +ELLIPSIS
        demo: {"cpu": ...}
        demo: --quick: tiny inputs, numbers mean nothing
        >>> b = h.block("noop", {"a": lambda: 2.0, "b": lambda: 1.0}, unit="x")  # doctest: +ELLIPSIS
        [noop] not waiting ...
        >>> b["configs"]["b"]["ratio"]
        0.5
    """

    def __init__(self, args: argparse.Namespace, script: str):
        self.args = args
        self.script = script
        self.wait = not (args.no_wait or os.environ.get(NO_WAIT_ENV, "").strip().lower() in ("1", "true", "yes"))
        self.machine = machine_info()
        self.blocks: list[dict] = []
        self.notes: dict = {}
        print(f"{script}: {json.dumps(self.machine)}", flush=True)
        if args.quick:
            print(f"{script}: --quick: tiny inputs, numbers mean nothing", flush=True)

    def wait_quiet(self, name: str) -> dict:
        """Wait for a quiet machine before block ``name`` and say how it went."""
        if self.wait:
            print(f"[{name}] waiting for the 1-minute load to fall below {self.args.load_threshold} "
                  f"(at most {self.args.wait_timeout:.0f} s; now {load1()})", flush=True)
        record = wait_for_quiet(self.args.load_threshold, self.args.wait_timeout, enabled=self.wait)
        if record["quiet"] is None:
            print(f"[{name}] not waiting for a quiet machine (--no-wait); load {record['load']}", flush=True)
        elif not record["quiet"]:
            print(f"[{name}] COULD NOT get a quiet machine in {record['waited_s']:.0f} s: running at load "
                  f"{record['load']}; treat this block's numbers as noisy", flush=True)
        return record

    def block(self, name: str, configs: dict[str, Callable[[], float]], *, unit: str, timed: bool = False,
              work: float | None = None, warmup: int = 0, rounds: int | None = None,
              higher_is_better: bool = True, info: dict | None = None) -> dict:
        """Measure ``configs`` interleaved (ABAB...), after waiting for a quiet machine.

        Args:
            name: the block's name (e.g. ``"resnet3d18 training"``).
            configs: configuration name -> a callable doing one measurement; the first is the
                baseline of the ratios.  Without ``timed`` it returns the measured value.
            unit: the unit of the values (``"samples/s"``, ``"s/step"``, ...).
            timed: the harness times each call instead (seconds, or ``work / seconds`` with ``work``).
            work: units of work per call (e.g. samples per step) when ``timed``: values are rates.
            warmup: untimed calls per configuration before the rounds (tracing, caches), interleaved.
            rounds: interleaved rounds (default ``--rounds``).
            higher_is_better: for the printed verdict only.
            info: anything to record beside the block (input shape, batch, ...).

        Returns:
            The block's record: ``configs`` maps each name to ``median``, ``ratio`` (to the first
            configuration), ``samples``; ``wait``, ``load_before``, ``load_rounds``, ``load_after``.
        """
        if not configs:
            raise ValueError(f"block {name!r}: no configuration to measure")
        wait = self.wait_quiet(name)
        rounds = int(rounds or self.args.rounds)
        for _ in range(warmup):
            for fn in configs.values():
                fn()
        samples = {key: [] for key in configs}
        loads = []
        for _ in range(rounds):
            loads.append(load1())
            for key, fn in configs.items():
                samples[key].append(self._measure(fn, timed, work))
        return self._record(name, samples, unit, higher_is_better, wait, loads, info or {})

    def record(self, name: str, samples: dict[str, list], *, unit: str, wait: dict, loads: list,
               higher_is_better: bool = True, info: dict | None = None) -> dict:
        """Record samples the caller interleaved itself (e.g. inside a training loop's hook), like a block.

        Args:
            name: the block's name.
            samples: configuration name -> its samples, one per round; the first is the ratios' baseline.
            unit: the samples' unit.
            wait: what :meth:`wait_quiet` returned before the rounds began.
            loads: the 1-minute load at each round.
            higher_is_better: for the printed verdict only.
            info: anything to record beside the block.

        Returns:
            The block's record, as :meth:`block` returns it.
        """
        return self._record(name, samples, unit, higher_is_better, wait, loads, info or {})

    @staticmethod
    def _measure(fn, timed: bool, work: float | None) -> float:
        if not timed:
            return float(fn())
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        return work / seconds if work else seconds

    def _record(self, name, samples, unit, higher_is_better, wait, loads, info) -> dict:
        base_key = next(iter(samples))
        base = _median(samples[base_key])
        configs = {}
        for key, values in samples.items():
            median = _median(values)
            configs[key] = {"median": median, "ratio": round(median / base, 4) if base else float("nan"),
                            "samples": values}
        record = {"block": name, "unit": unit, "higher_is_better": higher_is_better, "baseline": base_key,
                  "wait": wait, "load_before": wait["load"], "load_rounds": loads, "load_after": load1(),
                  "configs": configs, **({"info": info} if info else {})}
        self.blocks.append(record)
        self._print_block(record)
        return record

    @staticmethod
    def _print_block(record: dict) -> None:
        quiet = {None: "not waited", True: "quiet", False: "NOT quiet"}[record["wait"]["quiet"]]
        print(f"[{record['block']}] load {record['load_before']} -> {record['load_after']} ({quiet}), "
              f"{len(record['load_rounds'])} interleaved rounds, medians:", flush=True)
        for key, c in record["configs"].items():
            print(f"    {key:28s} {c['median']:12.4g} {record['unit']:10s} ×{c['ratio']:.3f} vs "
                  f"{record['baseline']}", flush=True)

    def note(self, key: str, value) -> None:
        """Record ``value`` under ``key`` beside the blocks (e.g. a FLOP count, a parameter count)."""
        self.notes[key] = value

    def report(self) -> dict:
        """Print every block as one Markdown table (load beside each row); write ``--json`` if given.

        Returns:
            The whole record: ``script``, ``quick``, ``machine``, ``notes``, ``blocks``.
        """
        print("\n| block | configuration | median | unit | ratio | vs | load before → after | quiet |")
        print("|---|---|---:|---|---:|---|---|---|")
        for b in self.blocks:
            quiet = {None: "not waited", True: "yes", False: "**no**"}[b["wait"]["quiet"]]
            for key, c in b["configs"].items():
                print(f"| {b['block']} | {key} | {c['median']:.4g} | {b['unit']} | {c['ratio']:.3f} | "
                      f"{b['baseline']} | {b['load_before']} → {b['load_after']} | {quiet} |")
        print("\nmachine: " + json.dumps(self.machine), flush=True)
        record = {"script": self.script, "quick": bool(self.args.quick), "machine": self.machine,
                  "notes": self.notes, "blocks": self.blocks}
        if self.args.json:
            with open(self.args.json, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=2, default=str)
            print(f"written to {self.args.json}", flush=True)
        return record
