"""``kerasmer explain``: attention masks, Grad-CAM and a montage for one clip and a trained model.

    kerasmer explain --model RUN_DIR --synthetic --clip 01/EP02_03s --out explain/
    kerasmer explain --model learnet.keras --data casme2=CASME2 --clip 17/EP02_01f --out explain/

The model's input is built as training builds it: the model spec's options
(``kerasmer.model_info(name).input_options()``), the run's ``data_options`` (apex, face, sampler, flow), the
data layer's input builder (``make_input_builder``) and the fold's normalisation.  Written to ``--out``:
``masks.png`` (models with attention: the residual attention family, Micro-Attention, MERANet), ``gradcam.png``,
``montage.png`` (onset to offset, with the dynamic image) and ``explain.json`` (the prediction and what was read).

A run directory keeps a fold's trained model at ``folds/<fold>/model.keras``; the fold whose test subjects hold
the clip's subject is chosen by default, so the picture explains a clip the model never trained on.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from kerasmer.core.atomic import atomic_write_text
from kerasmer.data import fit_normalization, make_synthetic, read_dataset
from kerasmer.data.pipeline.inputs import load_clip, make_input_builder
from kerasmer.data.preprocess.dynamic_image import dynamic_image
from kerasmer.layers.attention import AttentionActivation
from kerasmer.layers.micro_attention import ChannelMean
from kerasmer.models import attention_outputs, cam_layer, model_info
from kerasmer.models.meranet import meranet_attention_outputs
from kerasmer.models.micro_attention import attention_map_model
from kerasmer.training.config import load_config
from kerasmer.training.runner import load_data
from kerasmer.training.trainer import split_data_options
from kerasmer.viz import grad_cam, plot_attention_masks, plot_clip_montage, plot_grad_cam, plot_spatiotemporal_attention

MODEL_FILE = "model.keras"  # a fold's trained model in a run directory: folds/<fold>/model.keras


@dataclasses.dataclass
class Explained:
    """A trained model and what is needed to feed it as training did."""

    model: keras.Model
    name: str
    class_names: list
    normalization: tuple | None = None
    data_options: dict = dataclasses.field(default_factory=dict)
    run_dir: Path | None = None
    fold: str | None = None


def add_explain_parser(sub) -> None:
    """Register ``kerasmer explain``."""
    p = sub.add_parser("explain", help="attention masks, Grad-CAM and a montage of one clip for a trained model")
    p.add_argument("--model", required=True, help="a .keras file or a run directory (folds/<fold>/model.keras)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="NAME=ROOT", help="the dataset holding the clip, e.g. casme2=/data/CASME2")
    src.add_argument("--synthetic", action="store_true",
                     help="the synthetic set (the run's own when --model is a run directory)")
    p.add_argument("--clip", required=True, metavar="SUBJECT/EPISODE", help="the clip, e.g. 01/EP02_03s")
    p.add_argument("--out", required=True, help="folder for the pictures")
    p.add_argument("--layer", help="Grad-CAM layer (default: the model spec's, kerasmer.models.cam_layer)")
    p.add_argument("--class", dest="class_name", help="class to explain (default: the predicted one)")
    p.add_argument("--fold", help="run directory: the fold whose model to use (default: the clip's test fold)")
    p.add_argument("--name", help="registry name of a .keras model (default: the model's own name)")
    p.set_defaults(func=cmd_explain)


def _fail(message: str):
    raise SystemExit(f"kerasmer explain: {message}")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        _fail(f"cannot read {path}: {err}")


def _pick_fold(run_dir: Path, fold: str | None, subject: str | None) -> Path:
    """The fold folder whose model to use: ``fold``, else the one testing ``subject``, else the only one."""
    saved = sorted(p.parent for p in (run_dir / "folds").glob(f"*/{MODEL_FILE}"))
    if not saved:
        _fail(f"run directory {run_dir} holds no trained model (no folds/<fold>/{MODEL_FILE}); pass a .keras file, "
              "or save each fold's model there with a TrainerHook (docs/viz.md)")
    results = {p: _read_json(p / "result.json") for p in saved if (p / "result.json").is_file()}
    if fold is not None:
        chosen = [p for p in saved if p.name == fold or results.get(p, {}).get("name") == fold]
        if not chosen:
            _fail(f"--fold {fold!r}: no saved model for it in {run_dir}; folds with one: {[p.name for p in saved]}")
        return chosen[0]
    testing = [p for p in saved if str(subject) in map(str, results.get(p, {}).get("test_subjects", []))]
    return (testing or saved)[0]


def load_explained(path, *, name: str | None = None, fold: str | None = None, subject: str | None = None) -> Explained:
    """Load a ``.keras`` file or a run directory's fold model, with its class names and normalisation.

    Args:
        path: a ``.keras`` file, or a run directory (``config.json``, ``run.json``, ``folds/<fold>/model.keras``).
        name: the model's registry name (default: the run's model, or the ``.keras`` model's own name).
        fold: a run directory's fold (default: the fold that tests ``subject``, else the first saved).
        subject: the clip's subject, to choose the fold.

    Returns:
        An :class:`Explained`.  A ``.keras`` file inside ``RUN/folds/<fold>/`` gets that fold's normalisation
        and the run's class names and data options; a lone one gets none (fitted later on the dataset).

    Example:
        >>> loaded = load_explained("runs/learnet", subject="01")  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            _fail(f"--model {path}: a run directory has a config.json; this folder has none")
        model_file = _pick_fold(path, fold, subject) / MODEL_FILE
    elif path.suffix == ".keras" and path.is_file():
        model_file = path
    else:
        _fail(f"--model {path}: expected a .keras file or a run directory")
    model = keras.saving.load_model(model_file, compile=False)
    run_dir = model_file.parents[2] if model_file.parent.parent.name == "folds" else None
    loaded = Explained(model, name or model.name, [f"class {i}" for i in range(model.outputs[0].shape[-1])])
    if run_dir is not None and (run_dir / "config.json").is_file():
        config = load_config(run_dir / "config.json")
        result = _read_json(model_file.parent / "result.json") if (model_file.parent / "result.json").is_file() else {}
        norm = result.get("normalization")
        loaded = dataclasses.replace(
            loaded, name=name or config.model, class_names=list(_read_json(run_dir / "run.json")["class_names"]),
            normalization=tuple(np.asarray(a, np.float32) for a in norm) if norm else None,
            data_options=split_data_options(config.data_options)[0], run_dir=run_dir, fold=result.get("name"))
    model_info(loaded.name)  # an unknown name fails here, listing the registered ones
    return loaded


def _dataset(args, loaded: Explained) -> pd.DataFrame:
    """The clips, read as the run read them (its label scheme, its synthetic set) when there is a run."""
    if args.synthetic and loaded.run_dir is not None:
        config = load_config(loaded.run_dir / "config.json")
        if "synthetic" not in config.data:
            _fail(f"--synthetic: the run in {loaded.run_dir} was trained on {sorted(config.data)}, not the synthetic "
                  "set; pass --data NAME=ROOT")
        return load_data(config, loaded.run_dir)[0]
    if args.synthetic:
        return read_dataset("casme2", make_synthetic(Path(args.out) / "synthetic_data", seed=0))
    name, sep, root = args.data.partition("=")
    if not sep or not name or not root:
        _fail(f"--data expects NAME=ROOT (e.g. casme2=/data/CASME2), got {args.data!r}")
    if not Path(root).exists():
        _fail(f"--data {args.data}: the folder {root} does not exist")
    return read_dataset(name, root)


def find_clip(df: pd.DataFrame, spec: str) -> pd.Series:
    """The row of clip ``SUBJECT/EPISODE`` (subject compared as text).

    Args:
        df: a reader's DataFrame.
        spec: ``"SUBJECT/EPISODE"``, e.g. ``"01/EP02_03s"``.

    Returns:
        The clip's row.

    Raises:
        SystemExit: a malformed ``spec`` or an unknown clip; the message shows some clips that exist.

    Example:
        >>> row = find_clip(read_dataset("casme2", root), "01/EP02_03s")  # doctest: +SKIP
    """
    subject, sep, episode = str(spec).partition("/")
    if not sep:
        _fail(f"--clip expects SUBJECT/EPISODE (e.g. 01/EP02_03s), got {spec!r}")
    hit = df[(df["subject"].astype(str) == subject) & (df["clip"].astype(str) == episode)]
    if hit.empty:
        some = [f"{s}/{c}" for s, c in zip(df["subject"].astype(str), df["clip"].astype(str))][:6]
        _fail(f"--clip {spec}: no such clip in the dataset ({len(df)} clips, e.g. {', '.join(some)})")
    return hit.iloc[0]


def model_input(loaded: Explained, row, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The clip's input as training builds it: ``(raw, normalised)``, without the batch axis.

    The raw input is drawn under the pictures; the normalised one is fed to the model.  A model without a
    run's normalisation gets one fitted on the other subjects' clips, as a fold's training rows would give.

    Args:
        loaded: the model, its registry name, normalisation and the run's data options.
        row: the clip's row.
        df: every clip of the dataset (for a normalisation fitted here).

    Returns:
        ``(raw, normalised)`` float32 arrays of the model's input shape.

    Example:
        >>> raw, x = model_input(load_explained("runs/a", subject="01"), row, df)  # doctest: +SKIP
    """
    input_shape = tuple(int(v) for v in loaded.model.inputs[0].shape[1:])
    options = {**model_info(loaded.name).input_options(input_shape), **loaded.data_options}
    options.pop("cache_dir", None)
    builder = make_input_builder(options["modality"], apex=options.get("apex"), face=options.get("face"),
                                 sampler=options.get("sampler"), flow=options.get("flow"))
    raw = np.asarray(builder(row, input_shape), np.float32)
    norm = loaded.normalization
    if norm is None:
        others = df[df["subject"].astype(str) != str(row["subject"])]
        print(f"normalisation: fitted on the {len(others)} clips of the other subjects (the model has no run)")
        norm = fit_normalization(others if len(others) else df, modality=options["modality"], input_shape=input_shape,
                                 apex=options.get("apex"), face=options.get("face"), sampler=options.get("sampler"),
                                 flow=options.get("flow"))
    return raw, (raw - norm[0]) / norm[1]


def write_masks(model: keras.Model, x: np.ndarray, shown: np.ndarray, path: Path) -> str | None:
    """Write ``masks.png`` for a model with attention: the residual family, Micro-Attention or MERANet.

    Args:
        model: the trained model.
        x: its normalised input (no batch axis).
        shown: the raw input, drawn under the masks.
        path: the PNG to write.

    Returns:
        The kind of attention drawn, or None (nothing written) for a model without attention.

    Example:
        >>> write_masks(model, x, raw, Path("explain/masks.png"))  # doctest: +SKIP
        'residual attention'
    """
    batch = x[None]
    if any(isinstance(layer, AttentionActivation) for layer in model.layers):
        layers = [layer for layer in model.layers if isinstance(layer, AttentionActivation)]
        masks = [np.asarray(m)[0] for m in attention_outputs(model)(batch, training=False)[1:]]
        plot_attention_masks(shown, masks, names=[layer.name for layer in layers], activation=layers[0].mode,
                             path=path, title=f"{model.name}: soft masks per stage ({layers[0].mode})")
        return "residual attention"
    if any(isinstance(layer, ChannelMean) for layer in model.layers):
        maps = attention_map_model(model)(batch, training=False)
        maps = [np.asarray(m)[0] for m in (maps if isinstance(maps, (list, tuple)) else [maps])]
        plot_attention_masks(shown, maps, activation=None, path=path, title=f"{model.name}: micro-attention maps")
        return "micro-attention"
    if any(layer.name.endswith("_st_conv") for layer in model.layers):
        out = {k: np.asarray(v)[0] for k, v in meranet_attention_outputs(model)(batch, training=False).items()}
        blocks = {k[:-3]: {"ca": out[k], "st": out[k[:-3] + "_st"]} for k in out if k.endswith("_ca")}
        plot_spatiotemporal_attention(shown, blocks, path=path, title=f"{model.name}: attention per block")
        return "spatio-temporal attention"
    return None


def _montage(row, path: Path) -> None:
    frames = load_clip(row)
    onset = int(row["onset"])
    apex = row.get("apex")
    apex = None if apex is None or pd.isna(apex) else int(apex) - onset
    plot_clip_montage(frames, frame_numbers=range(onset, onset + len(frames)), apex=apex,
                      dynamic=dynamic_image(frames), path=path,
                      title=f"{row['subject']}/{row['clip']}: onset to offset, and its dynamic image")


def _class_index(loaded: Explained, class_name: str | None) -> int | None:
    if class_name is None:
        return None
    if class_name not in loaded.class_names:
        _fail(f"--class {class_name!r}: the model's classes are {loaded.class_names}")
    return loaded.class_names.index(class_name)


def cmd_explain(args) -> int:
    subject = str(args.clip).partition("/")[0]
    loaded = load_explained(args.model, name=args.name, fold=args.fold, subject=subject)
    class_index = _class_index(loaded, args.class_name)
    df = _dataset(args, loaded)
    row = find_clip(df, args.clip)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw, x = model_input(loaded, row, df)
    layer = args.layer or cam_layer(loaded.model, loaded.name)
    try:
        cam = grad_cam(loaded.model, x, layer, class_index=class_index)
    except ValueError as err:
        _fail(str(err))
    predicted = loaded.class_names[int(np.argmax(cam.probabilities))]
    explained = loaded.class_names[cam.class_index]
    # a clip model whose Grad-CAM layer has no time axis (e.g. 2D convs on one frame): drawn on the middle frame
    shown = raw[len(raw) // 2] if raw.ndim == 4 and cam.map.ndim == 2 else raw
    plot_grad_cam(shown, cam.map, class_name=explained, path=out / "gradcam.png",
                  title=f"{loaded.name} Grad-CAM at {layer}")
    masks = write_masks(loaded.model, x, raw, out / "masks.png")
    _montage(row, out / "montage.png")
    label = row.get("label", row.get("emotion"))
    summary = {"model": loaded.name, "fold": loaded.fold, "clip": str(args.clip), "label": str(label),
               "predicted": predicted, "explained_class": explained, "grad_cam_layer": layer,
               "probabilities": dict(zip(loaded.class_names, map(float, cam.probabilities))),
               "masks": masks, "files": ["gradcam.png", "montage.png"] + (["masks.png"] if masks else [])}
    atomic_write_text(out / "explain.json", json.dumps(summary, indent=2))
    print(f"{loaded.name}{f' (fold {loaded.fold})' if loaded.fold else ''} on {args.clip}: label {label}, "
          f"predicted {predicted}; wrote {', '.join(summary['files'])} to {out}")
    return 0


__all__ = ["Explained", "add_explain_parser", "cmd_explain", "find_clip", "load_explained", "model_input",
           "write_masks"]
