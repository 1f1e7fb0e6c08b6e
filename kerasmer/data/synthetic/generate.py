"""Synthetic micro-expression sets in the exact on-disk formats of CASME II, SAMM and SMIC-HS.

:func:`make_synthetic` draws faces procedurally with OpenCV (:mod:`.render`).  Each subject
has its own face geometry, skin tone, hair, background, lighting and camera noise; each clip
holds one brief, low-amplitude movement made of facial action units (AUs) that rises from
onset to a known apex and is gone by offset.  Everything is a keyword; a **preset** is a
table of keyword values (:data:`~kerasmer.data.synthetic.presets.PRESETS`):

``"demo"`` (default): the quickstart's and tutorials' set, fast and learnable.
    8 subjects × 3 balanced classes (negative 4+9, positive 12, surprise 1+2+26) × 4 clips,
    200 fps, 128×128, movements of 0.1–0.2 s peaking at 3.5 px (× 0.75–1.25), head jitter
    under a pixel, fixed AUs per class, no label noise, no blinks.
``"casme2-like"``: the benchmark.
    CASME II's 5-class scheme (others, disgust, happiness, repression, surprise) in CASME II's
    proportions 99/63/33/27/25, 24 subjects × about 9.5 clips, each subject lacking each class
    with probability 0.25 and showing a log-normal share of the clips; onset→offset 0.1–0.5 s at
    200 fps; peak movement 0.5–1.5 px at 128 px; head drift, tremor and rotation of the same
    order (drift 0.7 px, tremor 0.3 px, rotation 0.6°, a 3-px resting pose per clip); which AUs fire
    (half the clips draw another AU set of their class; ``others`` overlaps every class) and how
    strongly (±30 %) vary within a class; 3 % label noise; blinks in 20 % of clips; per-subject
    lighting, skin and camera noise.  Calibrated so that trivial baselines score a pooled UF1 of
    0.35-0.50 under LOSO and chance without movement (``docs/data.md``).

Settings (keywords; the presets' values are in ``docs/data.md``):

============================ ==========================================================
``subjects``                 number of subjects
``clips_per_class``          clips per class and subject (when ``clips_per_subject`` is None)
``clips_per_subject``        mean clips per subject, split over classes by ``class_weights``
``classes``, ``class_weights``  class names (the layout's vocabulary) and their proportions
``missing_class_rate``       probability a subject lacks a class
``subject_activity``         spread (log-normal sigma) of clips per subject
``fps``, ``image_size``      frame rate (fixed by SAMM/SMIC) and (height, width)
``duration``                 (low, high) seconds from onset to offset
``amplitude``                peak movement in px at 128-px scale; 0: nothing moves
``amplitude_spread``         per-clip factor 1 ± this
``crease``                   crease darkening per px of movement (tied to the amplitude)
``au_variation``             probability a clip draws another AU set seen for its class
``au_strength_spread``       per-AU strength factor 1 ± this
``head_drift``/``head_tremor``/``head_rotation``  slow drift (px), tremor (px), rotation (deg)
``pose_jitter``              per-clip resting pose (px; 0.75× in degrees, 1.5 %× in scale)
``label_noise``              share of clips whose written label is another class
``blink_rate``, ``flicker``  distractors: share of clips with a blink, per-frame gain noise
``lighting``, ``camera_noise``  per-subject lighting spread and camera-noise (low, high)
============================ ==========================================================

``layout="casme2"`` (default) writes ``CASME2-RAW/subXX/EPxx_yy/imgN.jpg`` and a
``CASME2-coding-*.xlsx``; ``layout="samm"`` SAMM's tree, grey frames and its spreadsheet with
a header block; ``layout="smic"`` SMIC-HS's folder tree at 100 fps.  ``read_dataset(layout,
root)`` reads each.  :func:`make_synthetic_sets` writes several layouts side by side (the
MEGC composite, holdout-database evaluation).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from kerasmer.data.synthetic.layouts import CODING_NAME, LAYOUTS, MARKER_NAME, clip_names, reuse_or_clear
from kerasmer.data.synthetic.presets import CASME2_NAMES, PRESETS, allocate_clips, resolve_settings
from kerasmer.data.synthetic.render import (  # noqa: F401  (re-exported: the video generator imports them here)
    AU_VARIANTS, EXPRESSION_AUS, _au_displacements, _intensity, _render, _subject_params,
)

_FORMAT_VERSION = 2
_LAYOUT_SEED = {"casme2": None, "samm": 1, "smic": 2}  # each layout draws its own subjects from the seed
_FIRST_FRAME = {"casme2": (1, 300), "samm": (100, 9000), "smic": (1000, 90000)}


def _plan_clips(rng, s: dict, layout: str, subject_index: int, p: dict, labels: list) -> list[dict]:
    """Everything random about one subject's clips except per-frame noise (drawn from each clip's own seed)."""
    sid = LAYOUTS[layout].subject(subject_index)
    classes, fps = list(s["classes"]), s["fps"]
    plans = []
    for label in labels:
        aus = EXPRESSION_AUS[label]
        if rng.random() < s["au_variation"]:
            variants = AU_VARIANTS.get(label, (aus,))
            aus = variants[int(rng.integers(len(variants)))]
        spread = s["au_strength_spread"]
        strengths = {au: float(rng.uniform(1 - spread, 1 + spread)) for au in aus}
        written = label
        if rng.random() < s["label_noise"]:
            others = [c for c in classes if c != label]
            written = others[int(rng.integers(len(others)))]
        lo, hi = s["duration"]
        span = int(np.clip(round(rng.uniform(lo, hi) * fps), 2, max(2, int(np.floor(hi * fps)))))
        pre, post = int(rng.integers(2, 7)), int(rng.integers(2, 7))
        plans.append({
            "subject": sid, "label": label, "emotion": written, "aus": tuple(int(a) for a in aus),
            "strengths": strengths, "span": span, "pre": pre, "post": post,
            "apex_i": pre + int(np.clip(round(span * rng.uniform(0.3, 0.6)), 1, span - 1)),
            "amp": s["amplitude"] * p["s"] * p["style"] * rng.uniform(1 - s["amplitude_spread"],
                                                                     1 + s["amplitude_spread"]),
            "start": int(rng.integers(*_FIRST_FRAME[layout])), "seed": int(rng.integers(2**63)),
        })
    for plan, name in zip(plans, clip_names(layout, sid, [q["emotion"] for q in plans], rng)):
        plan["clip"] = name
    return plans


def _head_motion(rng, s: dict, p: dict, n: int) -> np.ndarray:
    """Per-frame ``(dx, dy, angle, scale)``: a per-clip resting pose, slow drift, tremor and rotation."""
    px, fps = p["s"], s["fps"]
    j = s["pose_jitter"]
    base = (rng.normal(0, j * px), rng.normal(0, j * px), rng.normal(0, 0.75 * j),
            rng.uniform(1 - 0.015 * j, 1 + 0.015 * j))
    ph = rng.uniform(0, 2 * np.pi, 4)
    tt = np.arange(n) / fps
    drift = s["head_drift"] * px * np.stack([np.sin(2 * np.pi * 1.3 * tt + ph[0]),
                                             np.sin(2 * np.pi * 0.9 * tt + ph[1])])
    tremor = rng.normal(0, s["head_tremor"] * px + 1e-12, (2, n))
    rot = s["head_rotation"] * np.sin(2 * np.pi * 1.1 * tt + ph[2]) + rng.normal(0, s["head_rotation"] / 4 + 1e-12, n)
    return np.stack([base[0] + drift[0] + tremor[0], base[1] + drift[1] + tremor[1], base[2] + rot,
                     np.full(n, base[3])], axis=1)


def _blinks(rng, s: dict, n: int) -> np.ndarray:
    """Per-frame eyelid closure of at most one blink (0.1–0.15 s, anywhere in the clip)."""
    closure = np.zeros(n)
    if s["blink_rate"] > 0 and rng.random() < s["blink_rate"]:
        length = max(3, int(round(rng.uniform(0.1, 0.15) * s["fps"])))
        start = int(rng.integers(-length // 2, n))
        t = np.arange(n) - start
        inside = (t >= 0) & (t < length)
        closure[inside] = np.sin(np.pi * t[inside] / length) ** 2
    return closure


def _clip_frames(plan: dict, p: dict, s: dict) -> list[np.ndarray]:
    """Render one planned clip: BGR frames from neutral through the apex back to neutral."""
    rng = np.random.default_rng(plan["seed"])
    n = plan["pre"] + plan["span"] + 1 + plan["post"]
    k = _intensity(n, plan["pre"], plan["apex_i"], plan["pre"] + plan["span"])
    d = _au_displacements(plan["aus"], plan["amp"], crease=s["crease"], scale=p["s"], strengths=plan["strengths"])
    poses = _head_motion(rng, s, p, n)
    blink = _blinks(rng, s, n)
    gain = 1 + rng.normal(0, s["flicker"] + 1e-12, n) if s["flicker"] > 0 else np.ones(n)
    return [_render(p, d, k[i], tuple(poses[i]), rng, blink=float(blink[i]), gain=float(gain[i])) for i in range(n)]


def _write_clip(root: Path, layout: str, plan: dict, p: dict, s: dict) -> dict:
    """Render and write one clip's frames; its annotation record."""
    lay = LAYOUTS[layout]
    for i, frame in enumerate(_clip_frames(plan, p, s)):
        path = lay.frame(root, plan["subject"], plan["clip"], plan["emotion"], plan["start"] + i)
        if i == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        if lay.grey:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix == ".jpg" else []
        ok, buf = cv2.imencode(path.suffix, frame, params)
        if not ok:
            raise OSError(f"make_synthetic: could not encode {path}")
        path.write_bytes(buf.tobytes())
    start = plan["start"]
    return {"subject": plan["subject"], "clip": plan["clip"], "onset": start + plan["pre"],
            "apex": start + plan["apex_i"], "offset": start + plan["pre"] + plan["span"],
            "aus": "+".join(map(str, plan["aus"])), "emotion": plan["emotion"]}


def make_synthetic(root, preset: str = "demo", *, layout: str = "casme2", seed: int = 0, overwrite: bool = False,
                   workers: int | None = None, **overrides) -> Path:
    """Write a synthetic micro-expression set in CASME II's (or SAMM's, or SMIC-HS's) on-disk format.

    Args:
        root: folder to write into (created if needed).  If it holds a set made with the same
            preset, layout, seed and settings (``kerasmer_synthetic.json``), it is reused as is;
            a set made otherwise is replaced; a folder holding anything else is refused unless
            ``overwrite``.
        preset: ``"demo"`` or ``"casme2-like"`` (see the module docstring and ``docs/data.md``).
        layout: ``"casme2"``, ``"samm"`` or ``"smic"``.
        seed: random seed; the same seed gives pixel-identical frames and the same spreadsheet.
        overwrite: replace whatever ``root`` holds.
        workers: threads writing clips (default: up to 4, by CPU count); the output does not depend on it.
        **overrides: any setting of the preset (``subjects``, ``amplitude``, ``classes``, ...).

    Returns:
        ``root`` as a ``pathlib.Path``, to pass to ``read_dataset(layout, root)``.

    Raises:
        ValueError: an unknown preset, layout or setting, or a value out of range (before any file is written).

    Example:
        >>> from kerasmer.data import make_synthetic, read_dataset
        >>> df = read_dataset("casme2", make_synthetic("/tmp/kerasmer_syn", subjects=4))  # doctest: +SKIP
        >>> hard = make_synthetic("/tmp/syn_bench", "casme2-like")  # doctest: +SKIP
    """
    s = resolve_settings(preset, layout, **overrides)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"make_synthetic: seed must be a non-negative integer, got {seed!r}")
    root = Path(root)
    params = {"version": _FORMAT_VERSION, "layout": layout, "preset": preset, "seed": int(seed), **s}
    if reuse_or_clear(root, LAYOUTS[layout], params, overwrite):
        return root
    key = _LAYOUT_SEED[layout]
    rng = np.random.default_rng(int(seed) if key is None else [int(seed), key])
    jobs = []
    for si, labels in enumerate(allocate_clips(rng, s)):
        p = _subject_params(rng, tuple(s["image_size"]), lighting=s["lighting"], camera_noise=s["camera_noise"])
        jobs += [(plan, p) for plan in _plan_clips(rng, s, layout, si, p, labels)]
    root.mkdir(parents=True, exist_ok=True)
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:  # OpenCV drawing releases the GIL
        records = list(pool.map(lambda job: _write_clip(root, layout, job[0], job[1], s), jobs))
    if LAYOUTS[layout].write_sheet is not None:
        LAYOUTS[layout].write_sheet(root, records)
    (root / MARKER_NAME).write_text(json.dumps(params))
    return root


def make_synthetic_sets(base, layouts=("casme2",), preset: str = "demo", *, seed: int = 0,
                        own_vocabulary: bool = False, **overrides) -> dict:
    """Write one synthetic set per layout, each with its own subjects: ``{layout: root}`` for the readers.

    Args:
        base: the folder; a lone ``casme2`` set is written into it directly, several layouts into
            ``base/<layout>``.
        layouts: names among ``"casme2"``, ``"samm"``, ``"smic"``.
        preset: as for :func:`make_synthetic`.
        seed: as for :func:`make_synthetic` (each layout draws different subjects from it).
        own_vocabulary: write the CASME II layout's generic classes under CASME II's own names
            (negative → disgust, positive → happiness), so label schemes that map CASME II's
            vocabulary (``megc3``) keep every class.
        **overrides: settings for every layout (``fps`` only reaches CASME II: SAMM and SMIC have theirs).

    Returns:
        ``{layout: Path}``.

    Example:
        >>> roots = make_synthetic_sets("/tmp/megc", ["casme2", "samm", "smic"], own_vocabulary=True)  # doctest: +SKIP
        >>> composite(list(roots), roots)  # doctest: +SKIP
    """
    layouts = list(layouts)
    unknown = [n for n in layouts if n not in LAYOUTS]
    if unknown or not layouts or len(set(layouts)) != len(layouts):
        raise ValueError(f"make_synthetic_sets: layouts must be distinct names of {sorted(LAYOUTS)}, got {layouts}")
    base = Path(base)
    roots = {}
    for name in layouts:
        opts = dict(overrides)
        if name != "casme2":
            opts.pop("fps", None)
        elif own_vocabulary:
            classes = resolve_settings(preset, name, **opts)["classes"]
            opts["classes"] = tuple(CASME2_NAMES.get(c, c) for c in classes)
        root = base if layouts == ["casme2"] else base / name
        roots[name] = make_synthetic(root, preset, layout=name, seed=seed, **opts)
    return roots


__all__ = ["CODING_NAME", "EXPRESSION_AUS", "MARKER_NAME", "PRESETS", "make_synthetic", "make_synthetic_sets"]
