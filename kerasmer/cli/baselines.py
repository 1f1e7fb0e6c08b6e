"""``kerasmer baselines``: the trivial baselines' UF1/UAR under a protocol's folds, with no model trained.

    kerasmer baselines --synthetic                                   # LOSO on the synthetic set
    kerasmer baselines --data casme2=/data/CASME2 --labels casme2_5class
    kerasmer baselines --data casme2=/data/CASME2 --data samm=/data/SAMM --data smic=/data/SMIC \\
        --protocol megc_composite

The data are read, labelled and split exactly as ``kerasmer train`` does (the same ``RunConfig`` and
fold planning), so the numbers are the floor of a training run with the same flags.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from kerasmer.evaluation.baselines import run_baselines
from kerasmer.evaluation.protocols import PROTOCOLS, add_group_column
from kerasmer.training.config import RunConfig
from kerasmer.training.runner import load_data, plan_folds


def add_baselines_parser(sub) -> None:
    """Register ``kerasmer baselines`` on the ``kerasmer`` subcommand parser ``sub``."""
    p = sub.add_parser("baselines", help="UF1/UAR of the trivial baselines (majority class, logistic regression on "
                                         "the apex frame and on |apex - onset|) under a protocol's folds")
    p.add_argument("--data", action="append", metavar="NAME=ROOT",
                   help="dataset and its root, repeatable (e.g. --data casme2=/data/CASME2)")
    p.add_argument("--synthetic", action="store_true", help="use the synthetic CASME II-format set")
    p.add_argument("--synthetic-dir", help="where to write the synthetic set (default: a temporary directory)")
    p.add_argument("--subjects", type=int, help="synthetic set: subjects (default 8)")
    p.add_argument("--clips-per-class", type=int, help="synthetic set: clips per class and subject (default 4)")
    p.add_argument("--labels", help="label scheme, e.g. megc3 (default: the protocol's, else the dataset's emotions)")
    p.add_argument("--protocol", default="loso", help=", ".join(PROTOCOLS) + " (default loso)")
    p.add_argument("--n-splits", type=int, default=5, help="kfold: number of folds")
    p.add_argument("--test-fraction", type=float, default=0.2, help="split: share of clips held out")
    p.add_argument("--seed", type=int, default=0, help="fold seed (kfold, split) and synthetic-set seed")
    p.add_argument("--size", default="32,32", help="grey frame size the logistic regressions read (default 32,32)")
    p.add_argument("--face", choices=("haar", "mtcnn"), help="crop faces first, as --data-option face= would")
    p.set_defaults(func=cmd_baselines)


def _config(args, out: Path) -> RunConfig:
    """The run config whose data, labels and folds the baselines use (the model fields are not used)."""
    if args.synthetic or not args.data:
        data = {"synthetic": args.synthetic_dir}
    else:
        data = {}
        for item in args.data:
            name, sep, root = item.partition("=")
            if not sep or not name.strip() or not root.strip():
                raise ValueError(f"--data expects NAME=ROOT, got {item!r}")
            data[name.strip()] = root.strip()
    synthetic = {"subjects": args.subjects or 8, "clips_per_class": args.clips_per_class or 4}
    return RunConfig(data=data, labels=args.labels, protocol=args.protocol, n_splits=args.n_splits,
                     test_fraction=args.test_fraction, seed=args.seed, synthetic=synthetic,
                     data_options={"face": args.face} if args.face else {}, output_dir=str(out))


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--size expects HEIGHT,WIDTH like 32,32, got {text!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"--size expects positive integers, got {text!r}")
    return h, w


def cmd_baselines(args) -> int:
    """Read the data, plan the protocol's folds and print each baseline's pooled (or per-direction) UF1/UAR.

    Example:
        >>> from kerasmer.cli.main import main
        >>> main(["baselines", "--synthetic", "--subjects", "4"])  # doctest: +SKIP
    """
    with tempfile.TemporaryDirectory(prefix="kerasmer-baselines-") as tmp:
        try:
            size = _size(args.size)
            config = _config(args, Path(tmp))
            df, class_names, label_column, _ = load_data(config, Path(tmp))
            df = add_group_column(df)
            folds, _ = plan_folds(config, df, label_column, class_names)
            scores = run_baselines(df, folds, label_column=label_column, class_names=class_names, size=size,
                                   face=args.face)
        except (ValueError, FileNotFoundError) as err:
            raise SystemExit(f"kerasmer baselines: {err}") from None
    print(f"kerasmer baselines: {len(df)} clips, {df['fold_group'].nunique()} subjects, protocol {args.protocol} "
          f"({len(folds)} folds), classes {', '.join(class_names)}, grey {size[0]}x{size[1]}")
    by_fold = PROTOCOLS[config.protocol].report_by == "fold"  # HDE: each direction is its own result
    print(f"{'baseline':>20} {'test clips':>16} {'UF1':>6} {'UAR':>6}")
    for name, s in scores.items():
        rows = s["folds"].items() if by_fold else [("pooled", s)]
        for part, m in rows:
            print(f"{name:>20} {part:>16} {m['uf1']:>6.3f} {m['uar']:>6.3f}")
    return 0
