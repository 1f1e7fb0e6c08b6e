"""Difficulty presets of the synthetic set: tables of :func:`~kerasmer.data.synthetic.make_synthetic` keywords.

A preset is a dict of settings; every setting is also a keyword of ``make_synthetic``, so
``make_synthetic(root, preset="casme2-like", amplitude=0.0)`` is the benchmark with the
movement switched off.  :func:`resolve_settings` merges preset, layout and overrides and
checks every value before anything is drawn.  The presets and each setting are described
in the docstring of :mod:`kerasmer.data.synthetic.generate` and in ``docs/data.md``.

Class proportions of the realistic presets are the published counts: CASME II (Yan et al.,
PLoS ONE 2014; 5-class scheme: others 99, disgust 63, happiness 33, repression 27, surprise
25 over 26 subjects), SAMM (Davison et al., IEEE TAC 2018: 159 clips, 32 subjects) and
SMIC-HS (Li et al., FG 2013: 164 clips, 16 subjects).
"""

from __future__ import annotations

import numbers

import numpy as np

from kerasmer.data.synthetic.render import CREASE_PER_PX, EXPRESSION_AUS

# Every setting with the demo preset's value: today's kind of set (learnable, fast, balanced).
DEMO = {
    "subjects": 8, "clips_per_class": 4, "clips_per_subject": None,
    "classes": ("negative", "positive", "surprise"), "class_weights": None,
    "missing_class_rate": 0.0, "subject_activity": 0.0,
    "fps": 200.0, "image_size": (128, 128), "duration": (0.1, 0.2),
    "amplitude": 3.5, "amplitude_spread": 0.25, "crease": CREASE_PER_PX,
    "au_variation": 0.0, "au_strength_spread": 0.0,
    "head_drift": 0.4, "head_tremor": 0.2, "head_rotation": 0.4, "pose_jitter": 2.0,
    "label_noise": 0.0, "blink_rate": 0.0, "flicker": 0.0,
    "lighting": 1.0, "camera_noise": (1.0, 3.0),
}
PRESETS = {
    "demo": DEMO,
    # The benchmark: CASME II's 5-class scheme and proportions, sub-2-px movements under larger head motion.
    "casme2-like": {
        **DEMO, "subjects": 24, "clips_per_class": None, "clips_per_subject": 247 / 26,
        "classes": ("others", "disgust", "happiness", "repression", "surprise"),
        "class_weights": (99, 63, 33, 27, 25), "missing_class_rate": 0.25, "subject_activity": 0.4,
        "duration": (0.1, 0.5), "amplitude": 1.0, "amplitude_spread": 0.5, "crease": 1.5,
        "au_variation": 0.5, "au_strength_spread": 0.3,
        "head_drift": 0.7, "head_tremor": 0.3, "head_rotation": 0.6, "pose_jitter": 3.0,
        "label_noise": 0.03, "blink_rate": 0.2, "flicker": 0.01,
        "lighting": 1.3, "camera_noise": (1.5, 4.0),
    },
}
# Per layout: the frame rate its reader reports (None: any, recorded in the marker) and its classes.
LAYOUT_FPS = {"casme2": None, "samm": 200.0, "smic": 100.0}
VOCABULARY = {
    "casme2": tuple(EXPRESSION_AUS),
    "samm": ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other"),
    "smic": ("negative", "positive", "surprise"),
}
# What a preset becomes in the SAMM and SMIC-HS layouts: their own classes (and, for the realistic preset,
# their published proportions and sizes).
LAYOUT_PRESETS = {
    ("demo", "samm"): {"classes": ("anger", "happiness", "surprise")},
    ("demo", "smic"): {},
    ("casme2-like", "samm"): {
        "subjects": 28, "clips_per_subject": 159 / 32,
        "classes": ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other"),
        "class_weights": (57, 12, 9, 8, 26, 6, 15, 26)},
    ("casme2-like", "smic"): {"subjects": 16, "clips_per_subject": 164 / 16,
                              "classes": ("negative", "positive", "surprise"), "class_weights": (70, 51, 43)},
}
# The CASME II layout's own names for the generic classes, for label schemes that read CASME II's vocabulary.
CASME2_NAMES = {"negative": "disgust", "positive": "happiness"}

_FRACTIONS = ("missing_class_rate", "amplitude_spread", "au_variation", "au_strength_spread", "label_noise",
              "blink_rate")
_NON_NEGATIVE = ("amplitude", "crease", "head_drift", "head_tremor", "head_rotation", "pose_jitter", "flicker",
                 "lighting", "subject_activity")


def resolve_settings(preset: str = "demo", layout: str = "casme2", **overrides) -> dict:
    """The full settings of a preset in a layout, with ``overrides`` applied and every value checked.

    Args:
        preset: a name of :data:`PRESETS`.
        layout: ``"casme2"``, ``"samm"`` or ``"smic"``.
        **overrides: settings to change (the keys of :data:`DEMO`).  An explicit ``clips_per_class``
            without ``clips_per_subject`` replaces the preset's ``clips_per_subject``.

    Returns:
        A JSON-ready dict of every setting (tuples become lists).

    Raises:
        ValueError: an unknown preset, layout or setting, or a value out of range (names it).

    Example:
        >>> resolve_settings("casme2-like", amplitude=0.0)["classes"][:2]
        ['others', 'disgust']
    """
    if preset not in PRESETS:
        raise ValueError(f"make_synthetic: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if layout not in LAYOUT_FPS:
        raise ValueError(f"make_synthetic: unknown layout {layout!r}; choose one of {', '.join(LAYOUT_FPS)}")
    unknown = sorted(set(overrides) - set(DEMO))
    if unknown:
        raise ValueError(f"make_synthetic: unknown setting(s) {unknown}; settings: {sorted(DEMO)}")
    s = {**PRESETS[preset], **LAYOUT_PRESETS.get((preset, layout), {})}
    if "clips_per_class" in overrides and "clips_per_subject" not in overrides:
        s["clips_per_subject"] = None
    s.update(overrides)
    if LAYOUT_FPS[layout] is not None:
        if "fps" in overrides and float(overrides["fps"]) != LAYOUT_FPS[layout]:
            raise ValueError(f"make_synthetic: the {layout} layout is read at {LAYOUT_FPS[layout]:g} fps; "
                             f"got fps={overrides['fps']!r}")
        s["fps"] = LAYOUT_FPS[layout]
    _check(s, layout)
    return _jsonable(s)


def _check(s: dict, layout: str) -> None:
    """Raise ValueError naming the first out-of-range setting."""
    classes = tuple(str(c).strip().lower() for c in s["classes"])
    allowed = VOCABULARY[layout]
    if not classes or len(set(classes)) != len(classes) or any(c not in allowed for c in classes):
        raise ValueError(f"make_synthetic: classes must be distinct names from {sorted(allowed)} in the {layout} "
                         f"layout; got {classes}")
    s["classes"] = classes
    if s["class_weights"] is not None:
        w = list(s["class_weights"])
        if len(w) != len(classes) or any(not _real(x) or x <= 0 for x in w):
            raise ValueError(f"make_synthetic: class_weights must be {len(classes)} positive numbers (one per "
                             f"class), got {s['class_weights']!r}")
    _check_int(s, "subjects", 1, 99)
    if s["clips_per_subject"] is None:
        _check_int(s, "clips_per_class", 1, 10_000)
    elif not _real(s["clips_per_subject"]) or s["clips_per_subject"] <= 0:
        raise ValueError(f"make_synthetic: clips_per_subject must be a positive number, got {s['clips_per_subject']!r}")
    for key in _FRACTIONS:
        closed = key in ("au_variation", "blink_rate")  # probabilities that may be 1
        if not _real(s[key]) or not (0 <= s[key] <= 1 if closed else 0 <= s[key] < 1):
            raise ValueError(f"make_synthetic: {key} must be a number in [0, 1{']' if closed else ')'}, "
                             f"got {s[key]!r}")
    for key in _NON_NEGATIVE:
        if not _real(s[key]) or s[key] < 0:
            raise ValueError(f"make_synthetic: {key} must be a number >= 0, got {s[key]!r}")
    if not _real(s["fps"]) or s["fps"] <= 0:
        raise ValueError(f"make_synthetic: fps must be > 0, got {s['fps']!r}")
    _check_pair(s, "duration", 0, None)
    _check_pair(s, "camera_noise", 0, None)
    size = s["image_size"]
    if len(size) != 2 or any(not isinstance(v, numbers.Integral) or v < 32 for v in size):
        raise ValueError(f"make_synthetic: image_size must be (height, width), each >= 32; got {size!r}")
    if s["label_noise"] > 0 and len(classes) < 2:
        raise ValueError("make_synthetic: label_noise needs at least 2 classes")


def _real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and np.isfinite(x)


def _check_int(s: dict, key: str, low: int, high: int) -> None:
    v = s[key]
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not low <= v <= high:
        raise ValueError(f"make_synthetic: {key} must be an integer in [{low}, {high}], got {v!r}")


def _check_pair(s: dict, key: str, low: float, high) -> None:
    v = s[key]
    try:
        a, b = v
    except (TypeError, ValueError):
        raise ValueError(f"make_synthetic: {key} must be a (low, high) pair, got {v!r}") from None
    if not (_real(a) and _real(b)) or not low <= a <= b or (high is not None and b > high):
        raise ValueError(f"make_synthetic: {key} must be a (low, high) pair with {low} <= low <= high, got {v!r}")


def _jsonable(s: dict) -> dict:
    out = {}
    for key, value in s.items():
        if isinstance(value, (tuple, list)):
            value = [v.item() if isinstance(v, np.generic) else v for v in value]
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    out["fps"] = float(out["fps"])
    return out


def allocate_clips(rng, s: dict) -> list[list[str]]:
    """Each subject's clip labels (true classes), in a random order per subject.

    The total is ``clips_per_subject × subjects`` (or ``clips_per_class × classes × subjects``), split
    over the classes by ``class_weights`` (largest remainder); each subject lacks each class with
    probability ``missing_class_rate`` (every subject keeps one class, every class two subjects), and a
    class's clips go to the subjects that have it in proportion to their activity (log-normal,
    ``subject_activity``).  With the demo's settings every subject gets ``clips_per_class`` of each class.

    Args:
        rng: a ``numpy.random.Generator``.
        s: resolved settings (:func:`resolve_settings`).

    Returns:
        One list of class names per subject.

    Example:
        >>> [len(x) for x in allocate_clips(np.random.default_rng(0), resolve_settings(subjects=2))]
        [12, 12]
    """
    classes, n = list(s["classes"]), s["subjects"]
    per_subject = s["clips_per_subject"] or s["clips_per_class"] * len(classes)
    total = max(len(classes), int(round(per_subject * n)))
    weights = np.asarray(s["class_weights"] or [1] * len(classes), np.float64)
    counts = _largest_remainder(total, weights)
    present = rng.random((n, len(classes))) >= s["missing_class_rate"]
    for si in range(n):  # every subject shows at least one class
        if not present[si].any():
            present[si, rng.integers(len(classes))] = True
    for ci in range(len(classes)):  # every class is shown by at least two subjects (one for LOSO to test)
        while present[:, ci].sum() < min(2, n):
            present[rng.integers(n), ci] = True
    activity = np.exp(rng.normal(0, s["subject_activity"], n)) if s["subject_activity"] > 0 else np.ones(n)
    labels: list[list[str]] = [[] for _ in range(n)]
    for ci, cls in enumerate(classes):
        who = np.flatnonzero(present[:, ci])
        for si, k in zip(who, _largest_remainder(counts[ci], activity[who])):
            labels[si] += [cls] * int(k)
    return [[x[i] for i in rng.permutation(len(x))] for x in labels]


def _largest_remainder(total: int, weights) -> np.ndarray:
    """Integers summing to ``total`` in proportion to ``weights`` (ties go to the earlier entry)."""
    w = np.asarray(weights, np.float64)
    exact = total * w / w.sum()
    out = np.floor(exact).astype(int)
    order = np.argsort(-(exact - out), kind="stable")
    out[order[: total - out.sum()]] += 1
    return out


__all__ = ["CASME2_NAMES", "LAYOUT_FPS", "PRESETS", "VOCABULARY", "allocate_clips", "resolve_settings"]
