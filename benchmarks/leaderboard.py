"""Leaderboard: every registered model, its paper's recipe, LOSO on the ``"casme2-like"`` synthetic benchmark.

Issue 12, item 6.  Each row is one model trained with :func:`kerasmer.training.run_seeds` (the same code as
``kerasmer train --seeds``), leave-one-subject-out, once per seed, on one shared synthetic set
(``make_synthetic(root, "casme2-like", seed=--data-seed, subjects=...)``: the data and the folds are the same
for every seed and every row with the same number of subjects, so only the training seed varies).  A row
reports the model's pooled UF1 and UAR as mean ± std over seeds, the three trivial baselines of
:mod:`kerasmer.evaluation.baselines` on the *same folds* (majority class, logistic regression on the apex frame,
and on |apex - onset|), the parameters at the row's input size, and the training time per fold.

Two cores cannot train the large networks at their papers' sizes and lengths in a couple of hours, so each
row states its settings (:data:`ROWS`): the input size (the paper's, or reduced), the subjects, the epochs per
fold (instead of the recipe's 100 epochs or 12,000 iterations) and the precision.  Everything else is the
paper's recipe (optimizer, learning rate, batch, schedule, augmentation, balancing).  ``--full`` prints the
``kerasmer train`` command of every row at the paper's full size and length instead of running anything.

Usage::

    python benchmarks/leaderboard.py --out runs/leaderboard              # the table (about 2 h on 2 cores)
    python benchmarks/leaderboard.py --models learnet,resnet3d18 --out runs/lb
    python benchmarks/leaderboard.py --full                              # the full-size commands
    python benchmarks/leaderboard.py --quick --no-wait --out /tmp/lb     # seconds: checks the script

Rerunning the same command resumes: finished folds are skipped (the runs are ordinary resumable runs).
The table goes to ``OUT/leaderboard.md`` and ``OUT/leaderboard.json``; ``--docs docs/benchmarks.md`` also
replaces the text between ``<!-- leaderboard:start -->`` and ``<!-- leaderboard:end -->`` there.  To re-run some
rows only, ``--models a,b --keep benchmarks/results/leaderboard-<date>.json`` keeps the other rows of that saved
table, and a re-run row's saved version until its new one is finished (an interrupted launch loses no row);
every row states when and on what machine it was measured.  Accuracy
does not depend on the machine's load, the time per fold does: the harness waits for a quiet machine before
each row (``benchmarks/_harness.py``) and records the load beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Harness, add_arguments, load1  # noqa: E402

PRESET = "casme2-like"
SEEDS = (0, 1, 2)
MARKERS = ("<!-- leaderboard:start -->", "<!-- leaderboard:end -->")


@dataclasses.dataclass(frozen=True)
class Row:
    """One leaderboard row's settings; None keeps the paper's (registry input shape, recipe length)."""

    model: str
    input_shape: tuple | None = None
    epochs: int | None = None
    subjects: int | None = None  # None: --subjects
    precision: str = "float32"


# Settings chosen so that the table takes about two hours on 2 cores (the time per fold measured for each row is
# in docs/benchmarks.md), in order of cost.  Every row uses the same 8 subjects (the same folds, so one set of
# baselines for the whole table); the paper's input size where the time allows, and mixed_bfloat16 where
# docs/benchmarks.md measured it faster for training on this CPU.
ROWS = (
    Row("learnet", epochs=20),
    Row("shallow_conv2d_mhsa", epochs=8),
    Row("shallow_conv3d_mhsa", epochs=10, precision="mixed_bfloat16"),
    Row("emoresnet", input_shape=(32, 32, 3), epochs=10),  # its paper input is LARNet's 32-channel feature map
    Row("micro_attention_resnet", input_shape=(112, 112, 3), epochs=8, precision="mixed_bfloat16"),
    Row("shallow_convlstm_mhsa", input_shape=(13, 30, 30, 3), epochs=4),
    Row("resnet3d18", input_shape=(8, 32, 32, 3), epochs=5, precision="mixed_bfloat16"),
    Row("meranet18", input_shape=(8, 32, 32, 3), epochs=5, precision="mixed_bfloat16"),
    Row("attention56", input_shape=(64, 64, 3), epochs=4, precision="mixed_bfloat16"),
    Row("attention92", input_shape=(64, 64, 3), epochs=3, precision="mixed_bfloat16"),
    Row("larnet", input_shape=(64, 64, 3), epochs=2, precision="mixed_bfloat16"),
)
QUICK_ROWS = (Row("learnet", input_shape=(32, 32, 3), epochs=1),)  # --quick: seeds 0,1 on 3 tiny subjects


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, rounds=1)
    parser.add_argument("--out", default="runs/leaderboard", help="run directories and the table")
    parser.add_argument("--models", default="all", help="comma-separated registry names (default: every row)")
    parser.add_argument("--seeds", default=None, help="training seeds (default 0,1,2; --quick: 0,1)")
    parser.add_argument("--subjects", type=int, default=8, help="subjects of rows that do not set their own")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the one synthetic set every row uses")
    parser.add_argument("--docs", default=None, help="also write the table into this markdown file's markers")
    parser.add_argument("--full", action="store_true", help="print the full-size commands and exit")
    parser.add_argument("--keep", default=None, metavar="JSON",
                        help="a saved leaderboard.json whose rows stay in the table, with their date, until re-run")
    parser.add_argument("--render", default=None, metavar="JSON",
                        help="only render a saved leaderboard.json (to the screen and --docs), training nothing")
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = "0,1" if args.quick else ",".join(map(str, SEEDS))
    return args


def selected_rows(args) -> list[Row]:
    """The rows to run: ``--models`` in table order, every registered model covered (a test checks)."""
    rows = QUICK_ROWS if args.quick else ROWS
    if args.models == "all":
        return list(rows)
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    known = {r.model: r for r in rows}
    unknown = [m for m in wanted if m not in known]
    if unknown:
        raise SystemExit(f"leaderboard: --models: no row for {unknown}; rows: {', '.join(known)}")
    return [known[m] for m in wanted]


def row_settings(row: Row, args) -> dict:
    """What a row runs with, resolved: the table and the JSON state these, not the defaults."""
    import kerasmer

    info = kerasmer.model_info(row.model)
    subjects = 3 if args.quick else (row.subjects or args.subjects)
    return {"model": row.model, "input_shape": list(row.input_shape or info.input_shape),
            "paper_input": list(info.input_shape), "epochs": row.epochs, "subjects": subjects,
            "precision": row.precision, "recipe": info.recipe}


def run_config(row: Row, settings: dict, args):
    """The :class:`~kerasmer.training.RunConfig` of a row (the same as its ``kerasmer train`` command)."""
    from kerasmer.training import RunConfig

    # The row's epochs replace the recipe's length (for LARNet's recipe, its 12,000 iterations).
    overrides = {} if row.epochs is None else {"epochs": row.epochs}
    synthetic = {"preset": PRESET, "seed": args.data_seed, "subjects": settings["subjects"]}
    if args.quick:
        synthetic.update(clips_per_subject=15.0, missing_class_rate=0.0, image_size=[48, 48], duration=[0.05, 0.1])
    out = Path(args.out)
    return RunConfig(
        model=row.model, data={"synthetic": str(out / f"data_{settings['subjects']}subjects")},
        synthetic=synthetic, protocol="loso", recipe_overrides=overrides, precision=row.precision,
        input_shape=list(settings["input_shape"]), seeds=[int(s) for s in args.seeds.split(",")],
        data_options={"cache_dir": str(out / "cache")}, output_dir=str(out / row.model), verbose=0)


def parameters(model: str, input_shape, num_classes: int) -> int:
    """Trainable + non-trainable parameters of ``model`` at the row's input size (a Dense head's input grows
    with it)."""
    import keras

    import kerasmer

    net = kerasmer.build_model(model, num_classes=num_classes, input_shape=tuple(input_shape))
    count = int(net.count_params())
    del net
    keras.backend.clear_session()
    return count


def fold_seconds(run_dirs) -> list[float]:
    """Wall time of every fold of the given run directories (as each run recorded it)."""
    from kerasmer.evaluation.results import read_fold_results

    seconds = []
    for d in run_dirs:
        folds, _failed = read_fold_results(d)
        seconds += [float(f.seconds) for f in folds]
    return seconds


def run_row(row: Row, args, harness: Harness) -> dict:
    """Train one row (every seed), and return its record for the table."""
    from kerasmer.training.runner import run_seeds

    settings = row_settings(row, args)
    wait = harness.wait_quiet(row.model)
    config = run_config(row, settings, args)
    start, load_start = time.perf_counter(), load1()
    summary = run_seeds(config, log=lambda msg: print(f"[{row.model}] {msg}", flush=True), progress=False)
    wall = time.perf_counter() - start
    seconds = fold_seconds([s["run_dir"] for s in summary["seeds"].values()])
    classes = json.loads((Path(config.output_dir) / f"seed_{config.seeds[0]}" / "metrics.json").read_text())
    return {**settings, "seeds": config.seeds, "folds": sum(s["folds"] for s in summary["seeds"].values()),
            "failed": sum(s["failed"] for s in summary["seeds"].values()),
            "parameters": parameters(row.model, settings["input_shape"], len(classes["class_names"])),
            "pooled": summary["mean_std"]["pooled"], "baselines": summary["baselines_mean_std"],
            "seconds_per_fold_median": statistics.median(seconds) if seconds else float("nan"),
            "wall_s": round(wall, 1), "wait": wait, "load_start": load_start, "load_end": load1(),
            "command": full_command(row, args, full=False),
            "measured": f"{time.strftime('%Y-%m-%d', time.gmtime())}, {_machine(harness.machine)}"}


def full_command(row: Row, args, *, full: bool = True) -> str:
    """The ``kerasmer train`` command of a row: at the row's settings, or (``full``) the paper's size and length."""
    settings = row_settings(row, args)
    parts = [f"kerasmer train --model {row.model} --synthetic --synthetic-preset {PRESET}",
             f"--synthetic-option seed={args.data_seed}", f"--seeds {args.seeds}", f"--precision {row.precision}"]
    if full and settings["paper_input"][-1] not in (1, 3):
        # EmoResNet's paper input is a feature map no reader makes: the paper's size with the row's channels.
        shape = [*settings["paper_input"][:-1], settings["input_shape"][-1]]
        parts.append(f"--input-shape {','.join(map(str, shape))}")
    if not full:
        parts += [f"--subjects {settings['subjects']}", f"--input-shape {','.join(map(str, settings['input_shape']))}"]
        if row.epochs is not None:
            parts.append(f"--epochs {row.epochs}")
    parts.append(f"--out runs/leaderboard/{row.model}")
    return " ".join(parts)


def _machine(machine: dict) -> str:
    return f"{machine['cpu']}, {machine['logical_cpus']} CPUs"


def _stamp(meta: dict) -> str:
    """A saved table's date and machine, for rows saved before rows carried their own."""
    return f"{meta['when'].split()[0]}, {meta['machine']}"


def kept_rows(path: str | None, args) -> list[dict]:
    """Every row of a saved ``leaderboard.json``, each stamped with the date and machine it was measured on.  A row
    this launch re-runs is replaced only when its new row is finished (:func:`with_row`), so that an interrupted
    launch still holds the saved rows it did not reach.  The saved table must have the same seeds and data seed
    (the same folds)."""
    if path is None:
        return []
    saved = json.loads(Path(path).read_text())
    meta = saved["meta"]
    if (meta["seeds"], meta["data_seed"]) != (args.seeds, args.data_seed):
        raise SystemExit(f"leaderboard: --keep {path}: seeds {meta['seeds']} and data seed {meta['data_seed']}, "
                         f"but this launch has {args.seeds} and {args.data_seed}: not the same folds")
    stamp = _stamp(meta)
    return [{"measured": stamp, **r} for r in saved["rows"]]


def with_row(records: list[dict], new: dict) -> list[dict]:
    """``records`` with ``new`` in place of any earlier row of the same model, in the table's order."""
    return in_table_order([r for r in records if r["model"] != new["model"]] + [new])


def in_table_order(records: list[dict]) -> list[dict]:
    order = {r.model: i for i, r in enumerate(ROWS)}
    return sorted(records, key=lambda r: order.get(r["model"], len(order)))


def _load(r: dict) -> str:
    """The 1-minute load when the row started (after the wait for a quiet machine) and when it ended; the row's
    own training adds about 1.3 on 2 cores."""
    wait = r.get("wait") or {}
    quiet = {True: "quiet", False: "NOT quiet", None: "not waited"}[wait.get("quiet")]
    return f"{r['load_start']:.2f} → {r['load_end']:.2f} ({quiet})"


def _pm(d: dict, key: str) -> str:
    return f"{d[key]['mean']:.3f} ± {d[key]['std']:.3f}"


def render(records: list[dict], meta: dict) -> str:
    """The leaderboard as markdown: one row per model, its settings and the floors on its own folds."""
    lines = ["| model | input (paper's) | subjects | epochs | precision | parameters | UF1 | UAR | "
             "majority UF1 | apex-frame LR UF1 | \\|apex − onset\\| LR UF1 | s / fold | load | measured |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in records:
        shape = "×".join(map(str, r["input_shape"]))
        paper = "" if r["input_shape"] == r["paper_input"] else f" ({'×'.join(map(str, r['paper_input']))})"
        b = r["baselines"]
        floors = [_pm(b[k], "uf1") if k in b else "–" for k in ("majority", "apex_frame_lr", "apex_onset_diff_lr")]
        failed = f" ({r['failed']} of {r['folds'] + r['failed']} folds failed)" if r["failed"] else ""
        lines.append(f"| {r['model']} | {shape}{paper} | {r['subjects']} | {r['epochs'] or 'recipe'} | "
                     f"{r['precision']} | {r['parameters']:,} | **{_pm(r['pooled'], 'uf1')}**{failed} | "
                     f"{_pm(r['pooled'], 'uar')} | {' | '.join(floors)} | {r['seconds_per_fold_median']:.0f} | "
                     f"{_load(r)} | {r.get('measured') or _stamp(meta)} |")
    lines += ["", "A failed fold (e.g. a diverged loss, stopped by the trainer) has no predictions: the UF1 and "
              "UAR of such a row pool only the folds that finished, and say how many did not.",
              "", f"Mean ± std over training seeds {meta['seeds']} (sample std); LOSO, pooled over folds; "
              f"synthetic set `{PRESET}`, data seed {meta['data_seed']}.  Table written {meta['when']}; each row's "
              "date and machine are in its last column."]
    return "\n".join(lines) + "\n"


def write_docs(path: Path, table: str) -> None:
    """Replace the text between the leaderboard markers of ``path`` with ``table``."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(MARKERS[0]), text.find(MARKERS[1])
    if start < 0 or end < start:
        raise SystemExit(f"leaderboard: --docs {path}: markers {MARKERS} not found")
    path.write_text(text[:start + len(MARKERS[0])] + "\n" + table + text[end:], encoding="utf-8")


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = selected_rows(args)
    if args.full:
        for row in rows:
            print(full_command(row, args))
        return 0
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        table = render(saved["rows"], saved["meta"])
        print(table)
        if args.docs:
            write_docs(Path(args.docs), table)
        return 0
    harness = Harness(args, "leaderboard")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = kept_rows(args.keep, args)  # read before any training: a bad --keep fails at once
    for row in rows:
        records = with_row(records, run_row(row, args, harness))
        meta = {"seeds": args.seeds, "data_seed": args.data_seed, "when": time.strftime("%Y-%m-%d %H:%M UTC",
                time.gmtime()), "machine": _machine(harness.machine), "quick": args.quick}
        # Written after every row: an interrupted leaderboard keeps what it finished.
        (out / "leaderboard.json").write_text(json.dumps({"meta": meta, "machine": harness.machine,
                                                          "rows": records}, indent=2, default=float))
        table = render(records, meta)
        (out / "leaderboard.md").write_text(table)
    print("\n" + table)
    if args.docs:
        write_docs(Path(args.docs), table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
