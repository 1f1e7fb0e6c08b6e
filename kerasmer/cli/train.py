"""``kerasmer train``, ``kerasmer evaluate`` and ``kerasmer recipes``.

    kerasmer train --synthetic --model learnet --recipe learnet --epochs 5 --out runs/demo
    kerasmer train --config run.yaml --folds 3,7,12 --out runs/job1     # one fan-out job
    kerasmer evaluate runs/demo                                        # recompute and print the report
    kerasmer evaluate runs/job1 runs/job2 --out runs/merged            # merge fan-out jobs
"""

from __future__ import annotations

import argparse

import yaml

from kerasmer.core.lock import RunLockedError
from kerasmer.evaluation.protocols import PROTOCOLS
from kerasmer.evaluation.report import write_report
from kerasmer.evaluation.results import render_seeds_markdown
from kerasmer.training import SaveFoldModels, run, run_seeds
from kerasmer.training.config import RunConfig, load_config
from kerasmer.training.recipes import RECIPES, source_table


def _key_value(text: str, flag: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"kerasmer train: {flag} expects NAME=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value) if value != "" else None


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train and evaluate with a protocol and a paper recipe (resumable)",
                       description="Flags override the --config file; every run writes its resolved config "
                                   "to OUT/config.json.  Rerun the same command to resume an interrupted run.")
    p.add_argument("--config", help="YAML or JSON run config")
    p.add_argument("--model", help="registered model (kerasmer models; default learnet)")
    p.add_argument("--data", action="append", metavar="NAME=ROOT",
                   help="dataset and its root, repeatable (e.g. --data casme2=/data/CASME2 --data samm=/data/SAMM); "
                        "default: the synthetic set")
    p.add_argument("--synthetic", action="store_true",
                   help="use synthetic data in CASME II's layout (with --protocol megc_composite: CASME II, SAMM "
                        "and SMIC-HS layouts; hde: CASME II and SAMM)")
    p.add_argument("--on-mismatch", dest="on_mismatch", choices=("fix", "clip", "drop"),
                   help="a clip whose annotated onset..offset disagrees with the frames in its folder: fix (default: "
                        "the fix table corrects known clips, any other raises), clip (clamp to the frames present) "
                        "or drop (leave it out); changes are listed in run.json and report.md")
    p.add_argument("--synthetic-preset", metavar="NAME",
                   help="synthetic set: difficulty preset, demo (default: fast, learnable) or casme2-like (the "
                        "benchmark: CASME II's 5 classes and imbalance, sub-2-px movements; docs/data.md)")
    p.add_argument("--synthetic-option", action="append", metavar="KEY=VALUE",
                   help="synthetic set: any make_synthetic setting over the preset's, repeatable "
                        "(e.g. amplitude=0.5, label_noise=0.1, image_size=[64,64])")
    p.add_argument("--subjects", type=int, help="synthetic set: subjects (default: the preset's, 8 for demo)")
    p.add_argument("--clips-per-class", type=int, help="synthetic set: clips per class and subject (demo: 4)")
    p.add_argument("--labels", help="label scheme, e.g. megc3 (default: the dataset's own emotions)")
    p.add_argument("--protocol", help="; ".join(f"{name}: {p.help}" for name, p in PROTOCOLS.items())
                   + " (default loso)")
    p.add_argument("--recipe", help=f"{', '.join(RECIPES)} (kerasmer recipes; default: the model's own recipe, "
                                    "kerasmer models)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a recipe field, repeatable")
    p.add_argument("--epochs", type=int, help="shortcut for --set epochs=N")
    p.add_argument("--iterations", type=int, help="shortcut for --set iterations=N (optimizer steps)")
    p.add_argument("--batch-size", type=int, help="shortcut for --set batch_size=N (global batch)")
    p.add_argument("--learning-rate", type=float, help="shortcut for --set learning_rate=X")
    p.add_argument("--precision", help="float32, mixed_bfloat16, mixed_float16 or auto")
    p.add_argument("--seed", type=int)
    p.add_argument("--seeds", help="run the whole protocol once per seed, e.g. 0,1,2: OUT/seed_<n>/ each, and "
                                   "OUT/seeds.json + seeds.md with each seed's pooled UF1/UAR and mean ± std")
    p.add_argument("--save-models", action="store_true",
                   help="keep each fold's selected model as OUT/folds/<fold>/model.keras (for kerasmer explain "
                        "and kerasmer predict)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the trivial baselines (majority, logistic regression on the apex frame and on "
                        "|apex - onset|) that every report shows beside the model's score")
    p.add_argument("--out", dest="output_dir", help="run directory")
    p.add_argument("--input-shape", help="model input shape, e.g. 32,32,3")
    p.add_argument("--val-fraction", type=float, help="share of training subjects used for validation")
    p.add_argument("--n-splits", type=int, help="kfold: number of folds")
    p.add_argument("--test-fraction", type=float, help="split: share of clips held out")
    p.add_argument("--folds", help="run only these folds, comma-separated (fan-out jobs)")
    p.add_argument("--strategy", help="default, mirrored or multiworker")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                   help="input option, repeatable: apex=spotted, face=haar, sampler=centered, "
                        "cache_dir=PATH, balance=true|oversample, augment=false (over the recipe's)")
    p.add_argument("--init-from", help=".keras or .weights.h5 file to load weights from by layer name")
    p.add_argument("--freeze", action="append", metavar="PATTERN", help="freeze layers matching, repeatable")
    p.add_argument("--no-resume", action="store_true", help="start every fold afresh")
    p.add_argument("--checkpoint-every", type=float, metavar="SECONDS",
                   help="write a fold's checkpoint once this long since its last one (default 30; 0: every epoch)")
    p.add_argument("--no-deterministic", action="store_true", help="allow non-deterministic (faster) ops")
    p.add_argument("--verbose", type=int, help="Keras epoch progress: 0 none, 1 bar (default), 2 one line")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="recompute a run's report (or merge several runs) and print it")
    p.add_argument("run_dirs", nargs="+", help="run directories (several: fan-out jobs to merge)")
    p.add_argument("--out", help="where to write the merged report (needed for several run directories)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recipes", help="list the training recipes")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="every field of every recipe and protocol variant, with its source (paper section, "
                        "kerasmer default or inferred)")
    p.set_defaults(func=cmd_recipes)


def config_from_args(args: argparse.Namespace):
    """The :class:`~kerasmer.training.RunConfig` of ``kerasmer train``'s flags (over ``--config``)."""
    fields: dict = {}
    for name in ("model", "labels", "protocol", "recipe", "precision", "seed", "output_dir", "val_fraction",
                 "n_splits", "test_fraction", "strategy", "init_from", "verbose", "on_mismatch", "checkpoint_every"):
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    if args.data:
        fields["data"] = dict(_key_value(d, "--data") for d in args.data)
    if args.synthetic:
        fields["data"] = {"synthetic": None}
    synthetic = dict(_key_value(o, "--synthetic-option") for o in (args.synthetic_option or []))
    synthetic.update({k: v for k, v in (("preset", args.synthetic_preset), ("subjects", args.subjects),
                                        ("clips_per_class", args.clips_per_class)) if v is not None})
    if args.input_shape:
        try:
            fields["input_shape"] = [int(v) for v in args.input_shape.split(",")]
        except ValueError:
            raise SystemExit(f"kerasmer train: --input-shape expects integers like 32,32,3, got {args.input_shape!r}")
    if args.data_option:  # values are YAML scalars: "true" -> True, paths and names stay strings
        fields["data_options"] = dict(_key_value(o, "--data-option") for o in args.data_option)
    if args.folds:
        fields["folds"] = [f.strip() for f in args.folds.split(",") if f.strip()]
    if args.freeze:
        fields["freeze"] = list(args.freeze)
    if args.no_resume:
        fields["resume"] = False
    if args.no_deterministic:
        fields["deterministic"] = False
    if args.seeds:
        fields["seeds"] = args.seeds  # "0,1,2": RunConfig parses and checks it
    if args.no_baselines:
        fields["baselines"] = False
    overrides = dict(_key_value(s, "--set") for s in (args.set or []))
    for name in ("epochs", "iterations", "batch_size", "learning_rate"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.config:
        base = load_config(args.config)
        d = base.to_dict()
        d.update(fields)
        d["recipe_overrides"] = {**base.recipe_overrides, **overrides}
        changed = synthetic.get("preset", "demo") != (base.synthetic or {}).get("preset", "demo")
        # another preset brings its own sizes: the file's synthetic options belong to its preset
        d["synthetic"] = synthetic if changed else {**(base.synthetic or {}), **synthetic}
        return RunConfig.from_dict(d, source=args.config)
    fields["recipe_overrides"] = overrides
    # the demo's size unless a preset brings its own (casme2-like: 24 subjects, CASME II's class counts)
    fields["synthetic"] = synthetic if synthetic.get("preset", "demo") != "demo" else {
        "subjects": 8, "clips_per_class": 4, **synthetic}
    fields.setdefault("verbose", 1)  # the command line shows Keras' epoch bar under the fold bar by default
    return RunConfig.from_dict(fields, source="kerasmer train")


def cmd_train(args) -> int:
    try:
        config = config_from_args(args)
    except ValueError as err:
        raise SystemExit(f"kerasmer train: {err}") from None
    print(f"kerasmer train: {config.model} / {config.protocol} / recipe {config.recipe} -> {config.output_dir}")
    try:
        hooks = [SaveFoldModels()] if args.save_models else []
        if config.seeds:
            summary = run_seeds(config, hooks=hooks)
            print(render_seeds_markdown(summary, config.model) + f"summary: {config.output_dir}/seeds.md")
            return 0 if all(s["folds"] for s in summary["seeds"].values()) else 1
        result = run(config, hooks=hooks)
    except (ValueError, FileNotFoundError, RunLockedError) as err:
        raise SystemExit(f"kerasmer train: {err}") from None
    print(result.fold_table())  # per-dataset rows for megc_composite, one row per direction for HDE
    print(result.floor_table(config.model))  # the score's floor: trivial baselines on the same test clips
    if result.pooled:
        print(f"pooled UF1 = {result.pooled['uf1']:.4f}   UAR = {result.pooled['uar']:.4f}   "
              f"report: {config.output_dir}/report.md")
    for name, m in result.per_dataset.items():
        print(f"{name}: UF1 = {m['uf1']:.4f}   UAR = {m['uar']:.4f}")
    if not result.pooled and result.folds:  # HDE: each direction is its own result, never pooled
        for f in result.folds:
            print(f"{f.name}: UF1 = {f.metrics['uf1']:.4f}   UAR = {f.metrics['uar']:.4f}")
        print(f"report: {config.output_dir}/report.md")
    return 1 if result.failed and not result.folds else 0


def cmd_evaluate(args) -> int:
    if len(args.run_dirs) > 1 and not args.out:
        raise SystemExit("kerasmer evaluate: merging several run directories needs --out DIR")
    out = args.out or args.run_dirs[0]
    try:
        print(write_report(out, sources=args.run_dirs))
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"kerasmer evaluate: {err}") from None
    return 0


def cmd_recipes(args) -> int:
    for name, r in sorted(RECIPES.items()):
        length = f"{r.iterations} iterations" if r.iterations else f"{r.epochs} epochs"
        variants = f"  [protocol variants: {', '.join(r.variants)}]" if r.variants else ""
        print(f"{name:24s} {r.optimizer:5s} lr {r.learning_rate:<7g} batch {r.batch_size:<3d} {length:16s} "
              f"schedule {r.schedule:13s} {r.paper}{variants}")
        if getattr(args, "verbose", False):
            for protocol in [None, *r.variants]:
                if protocol:
                    print(f"  protocol {protocol}:")
                for field, value, source in source_table(name, protocol):
                    print(f"    {field:24s} {value:<28s} {source}")
    return 0
