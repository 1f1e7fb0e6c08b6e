"""The ``kerasmer`` command line.

    kerasmer quickstart        # synthetic CASME II-format set -> LOSO with LEARNet -> SavedModel
    kerasmer quickstart --preset casme2-like   # the same on the synthetic benchmark
    kerasmer models            # list registered models
    kerasmer train ...         # protocols x paper recipes, resumable (kerasmer train --help)
    kerasmer evaluate RUN_DIR  # recompute / merge reports
    kerasmer recipes           # list the training recipes
    kerasmer baselines ...     # trivial baselines' UF1/UAR under a protocol's folds, no training
    kerasmer explain ...       # attention masks, Grad-CAM and a montage of one clip (kerasmer explain --help)
    kerasmer predict VIDEO --model saved_models/learnet --out pred   # spot, then recognise, in a video
    kerasmer evaluate-spotting --pred pred/predictions.csv --truth s01.csv   # MEGC spotting F1 and STRS
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import kerasmer
from kerasmer.cli.baselines import add_baselines_parser
from kerasmer.cli.explain import add_explain_parser
from kerasmer.cli.predict import add_predict_parser
from kerasmer.cli.train import add_train_parser
from kerasmer.cli.spotting import add_spotting_parser
from kerasmer.data import make_synthetic, read_dataset
from kerasmer.export import export_saved_model
from kerasmer.training import KeepModel, RunConfig, run
from kerasmer.training.recipes import OPTIMIZER_CHOICES
from kerasmer.training.timing import StageTimes


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The command is a process of its own, with no TensorFlow logs of the user's to keep: only TF's errors show.
    # (Library calls instead hide just the expected records, for their own duration: training.callbacks.quiet_tf_logs.)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def cmd_models(args) -> int:
    for name in kerasmer.list_models(args.pattern):
        info = kerasmer.model_info(name)
        paper = f"{info.paper_params / 1e6:.2f}M" if info.paper_params else "-"
        print(f"{name:24s} {info.modality:14s} {str(info.input_shape):18s} paper params {paper:>8s}  "
              f"{info.description}")
    return 0


def cmd_quickstart(args) -> int:
    t0 = time.perf_counter()
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="kerasmer-synthetic-"))
    print(f"[1/4] writing the synthetic CASME II-format set (preset {args.preset}) to {data_dir}")
    sizes = {k: v for k, v in (("subjects", args.subjects), ("clips_per_class", args.clips_per_class))
             if v is not None}  # unset: the preset's own (demo: 8 subjects x 4 clips per class)
    try:
        root = make_synthetic(data_dir, args.preset, seed=args.seed, **sizes)
    except ValueError as err:
        raise SystemExit(f"kerasmer quickstart: {err}") from None
    laps = {"synthetic set": time.perf_counter() - t0}
    df = read_dataset("casme2", root)
    class_names = sorted(df["emotion"].unique())
    print(f"      {len(df)} clips, {df['subject'].nunique()} subjects, classes {class_names}")

    print(f"[2/4] leave-one-subject-out with {args.model} ({args.epochs} epochs per fold, precision {args.precision})")
    overrides = dict(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                     early_stopping_patience=args.patience, **OPTIMIZER_CHOICES[args.optimizer])
    run_dir = Path(args.out) if args.out else data_dir / "run"
    config = RunConfig(model=args.model, data={"casme2": str(root)}, protocol="loso", recipe="quickstart",
                       recipe_overrides=overrides, precision=args.precision, seed=args.seed,
                       output_dir=str(run_dir), verbose=args.verbose, resume=False)
    keep, timer, t_run = KeepModel(), StageTimes(), time.perf_counter()
    result = run(config, hooks=[keep, timer], log=lambda s: None)
    laps["outside the folds"] = time.perf_counter() - t_run - timer.total()
    laps["the folds"] = timer.total()
    print("[3/4] per-fold results (epoch = the epoch chosen on validation subjects, never on the test subject)")
    print(result.fold_table())
    print(f"      pooled UF1 = {result.pooled['uf1']:.3f}   pooled UAR = {result.pooled['uar']:.3f}   "
          f"(chance ≈ {1 / len(class_names):.3f})   report: {run_dir / 'report.md'}")
    print("      against trivial baselines on the same folds (no score means anything without its floor):")
    print("\n".join("      " + line for line in result.floor_table(args.model).splitlines()))
    if args.no_export:
        print("[4/4] export skipped (--no-export)")
        laps["export"] = 0.0
    else:
        last = keep.result
        out = export_saved_model(
            keep.model, Path(args.export_dir) / args.model, class_names=result.class_names,
            normalization=last.normalization,
            metadata={"modality": kerasmer.model_info(args.model).modality, "trained_on": "synthetic",
                      "fold": last.name},
        )
        print(f"[4/4] exported the last fold's model (test subject {last.name}) to {out}")
    laps.setdefault("export", time.perf_counter() - t0 - sum(laps.values()))
    print(f"done in {time.perf_counter() - t0:.0f} s (after imports); where the time went:")
    print(_time_breakdown(laps, timer))
    return 0


def _time_breakdown(laps: dict, timer: StageTimes) -> str:
    notes = {"synthetic set": "written (deterministic; --data-dir keeps it)", "outside the folds":
             "reading the set, the baselines on the same folds, the report",
             "the folds": f"{timer.folds} folds, by stage:", "export": "the SavedModel and its warm-up requests"}
    lines = []
    for name, s in laps.items():
        lines.append(f"      {name:<18s}{s:7.1f} s  {notes[name]}")
        if name == "the folds":
            lines.append(timer.table(indent="        "))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kerasmer", description="Micro-expression recognition with Keras 3.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("quickstart", help="LOSO with LEARNet on the embedded synthetic set, then export")
    p.add_argument("--data-dir", help="where to write the synthetic set (default: a temporary directory)")
    p.add_argument("--model", default="learnet", help="registered model (default: learnet)")
    p.add_argument("--preset", default="demo",
                   help="synthetic set: demo (default: fast, learnable) or casme2-like (the benchmark: CASME II's "
                        "5 classes and imbalance, sub-2-px movements; docs/data.md)")
    p.add_argument("--subjects", type=int, help="synthetic subjects (default: the preset's; demo 8)")
    p.add_argument("--clips-per-class", type=int, help="clips per class and subject (default: the preset's; demo 4)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd", "sgd_nesterov"],
                   help="adam, sgd (momentum 0.9) or sgd_nesterov")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience on validation loss")
    p.add_argument("--precision", default="float32",
                   help="float32, mixed_bfloat16 (fast on AVX-512 BF16 CPUs), mixed_float16 (GPUs) or auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export-dir", default="saved_models")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--out", help="run directory for the report (default: DATA_DIR/run)")
    p.add_argument("--verbose", type=int, default=0, help="Keras epoch progress (0, 1 or 2)")
    p.set_defaults(func=cmd_quickstart)

    p = sub.add_parser("models", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*")
    p.set_defaults(func=cmd_models)

    add_train_parser(sub)
    add_spotting_parser(sub)
    add_explain_parser(sub)
    add_predict_parser(sub)
    add_baselines_parser(sub)
    return parser


def main(argv=None) -> int:
    _quiet_tf()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
