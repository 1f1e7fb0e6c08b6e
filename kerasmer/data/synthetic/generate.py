"""A synthetic micro-expression set written in the exact on-disk format of CASME II.

:func:`make_synthetic` draws faces procedurally with OpenCV.  Each subject has its
own face geometry, skin tone, hair, background, lighting direction and camera
noise; each clip holds one brief (≤ 1/5 s), low-amplitude (a few pixels)
movement made of facial action units (AUs) that rises from onset to a known
apex and is gone by offset:

============ =========================== =========================================
class        AUs                         what moves
============ =========================== =========================================
positive     12                          lip corners pulled up and out
negative     4 + 9                       brows lowered and drawn together, nose
                                         wrinkled (nostrils up, bridge creases)
surprise     1 + 2 + 26                  brows raised, upper lids up, jaw dropped
============ =========================== =========================================

(``happiness`` and ``disgust`` are aliases; ``sadness`` (1+4+15) and ``fear``
(1+2+4) are also known.)  Small head jitter, per-clip pose offsets and
per-subject appearance mean that no single frame gives the label away; the
onset→apex change does, as a real micro-expression's does.

Because the files follow CASME II's layout (``CASME2-RAW/subXX/EPxx_yy/imgN.jpg``
numbered from a non-zero start, and a ``CASME2-coding-*.xlsx`` with the official
columns and an unnamed blank column), ``read_dataset("casme2", root)`` reads it.
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import cv2
import numpy as np

CODING_NAME = "CASME2-coding-synthetic.xlsx"
MARKER_NAME = "kerasmer_synthetic.json"
_FORMAT_VERSION = 1
# Class name -> AUs in CASME II's "Action Units" notation.
EXPRESSION_AUS = {
    "positive": (12,), "happiness": (12,),
    "negative": (4, 9), "disgust": (4, 9),
    "surprise": (1, 2, 26),
    "sadness": (1, 4, 15),
    "fear": (1, 2, 4),
}
_SHIFT = 4  # OpenCV sub-pixel drawing: coordinates carry 4 fractional bits
_ONE = 1 << _SHIFT


def _p(pts) -> np.ndarray:
    """Float points -> OpenCV fixed-point int32 (sub-pixel, for smooth small motion)."""
    return np.round(np.asarray(pts, np.float64) * _ONE).astype(np.int32)


def _curve(a, mid, b, n=9) -> np.ndarray:
    """Quadratic curve from a to b that passes through ``mid`` at its middle."""
    a, mid, b = np.asarray(a, np.float64), np.asarray(mid, np.float64), np.asarray(b, np.float64)
    w = _BEZIER[n] if n in _BEZIER else _BEZIER.setdefault(n, _bezier_weights(n))
    return w @ np.stack([a, 2 * mid - 0.5 * (a + b), b])


def _bezier_weights(n) -> np.ndarray:
    t = np.linspace(0, 1, n)
    return np.stack([(1 - t) ** 2, 2 * (1 - t) * t, t**2], axis=1)


_BEZIER: dict[int, np.ndarray] = {}


def _smooth_noise(rng, shape, cells, amp) -> np.ndarray:
    """Low-frequency noise: a random grid upsampled with bicubic interpolation."""
    h, w = shape
    grid = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) * amp


def _subject_params(rng, size) -> dict:
    """Face geometry, colours, lighting and noise of one subject (pixels of ``size``)."""
    h, w = size
    s = min(h, w) / 128.0
    tone = rng.uniform(0, 1)  # light .. dark skin
    skin = (1 - tone) * np.array([175, 195, 235]) + tone * np.array([60, 85, 130]) + rng.normal(0, 12, 3)
    cx, cy = w / 2 + rng.normal(0, 3 * s), h * 0.53 + rng.normal(0, 3 * s)
    a, b = w * rng.uniform(0.33, 0.42), h * rng.uniform(0.40, 0.47)
    eye_y = cy - b * rng.uniform(0.12, 0.25)
    eye_w = a * rng.uniform(0.17, 0.22)
    p = {
        "s": s, "skin": skin, "cx": cx, "cy": cy, "a": a, "b": b,
        "bg": rng.uniform(40, 220, 3), "hair": rng.uniform(10, 80) * rng.uniform(0.6, 1.0, 3),
        "hair_drop": b * rng.uniform(0.35, 0.55),
        "lips": skin * np.array([0.65, 0.6, 0.95]) + np.array([0, 0, 20]),
        "eye_y": eye_y, "eye_dx": a * rng.uniform(0.38, 0.46), "eye_w": eye_w,
        "eye_h": eye_w * rng.uniform(0.38, 0.5), "iris": rng.uniform(20, 90, 3),
        "brow_gap": s * rng.uniform(8, 12), "brow_len": eye_w * rng.uniform(1.2, 1.5),
        "brow_arch": s * rng.uniform(1.0, 3.0), "brow_thick": max(1, int(round(s * rng.uniform(2.0, 3.5)))),
        "nose_y": cy + b * rng.uniform(0.12, 0.2), "nose_w": a * rng.uniform(0.14, 0.2),
        "mouth_y": cy + b * rng.uniform(0.45, 0.53), "mouth_w": a * rng.uniform(0.3, 0.4),
        "lip_h": s * rng.uniform(2.0, 3.2), "gap0": s * rng.uniform(0.0, 2.5),
        # resting creases: some faces show frown lines, nose creases or deep folds at rest,
        # so a crease in one frame does not give an AU away; the AU only deepens them.
        "glabella0": rng.uniform(0, 0.6), "crease0": rng.uniform(0, 0.6), "fold0": rng.uniform(0.1, 0.6),
        "light_dir": rng.uniform(0, 2 * np.pi), "light_grad": rng.uniform(0.15, 0.45),
        "gain": rng.uniform(0.85, 1.1), "noise": rng.uniform(1.0, 3.0),
        "style": rng.uniform(0.85, 1.15),  # the subject's expressiveness
        "texture": _smooth_noise(rng, size, 6, 7.0) + _smooth_noise(rng, size, 24, 2.5),
    }
    # lighting: a linear ramp in a random direction times a global gain
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xx - cx) * np.cos(p["light_dir"]) + (yy - cy) * np.sin(p["light_dir"])) / max(h, w)
    p["light"] = (p["gain"] * (1 + p["light_grad"] * ramp))[..., None].astype(np.float32)
    return p


def _au_displacements(aus, amp) -> dict:
    """Pixel displacements of the facial landmarks for AU set ``aus`` at amplitude ``amp``.

    Keys: brow_in_dy/brow_out_dy/brow_in_dx (dx towards the midline), lid_dy,
    nostril_dy/nostril_dx, lip_up_dy, corner_dy/corner_dx, jaw_dy, and the
    visibility (0..1) of glabella lines, nose creases and nasolabial folds.
    """
    d = dict.fromkeys(("brow_in_dy", "brow_out_dy", "brow_in_dx", "lid_dy", "nostril_dy", "nostril_dx",
                       "lip_up_dy", "corner_dy", "corner_dx", "jaw_dy", "glabella", "crease", "fold"), 0.0)
    if 1 in aus:  # inner brow raiser
        d["brow_in_dy"] -= amp
    if 2 in aus:  # outer brow raiser
        d["brow_out_dy"] -= amp
        d["lid_dy"] -= 0.35 * amp
    if 4 in aus:  # brow lowerer: down and together
        d["brow_in_dy"] += amp
        d["brow_out_dy"] += 0.4 * amp
        d["brow_in_dx"] += 0.6 * amp
        d["glabella"] = 1.0
    if 9 in aus:  # nose wrinkler
        d["nostril_dy"] -= 0.7 * amp
        d["nostril_dx"] += 0.3 * amp
        d["lip_up_dy"] -= 0.4 * amp
        d["crease"] = 1.0
    if 12 in aus:  # lip corner puller
        d["corner_dy"] -= 1.2 * amp
        d["corner_dx"] += 0.8 * amp
        d["fold"] = 1.0
    if 15 in aus:  # lip corner depressor
        d["corner_dy"] += 0.8 * amp
    if 26 in aus:  # jaw drop
        d["jaw_dy"] += 1.1 * amp
    return d


def _draw_eyes_and_brows(img, p, d, k, dark, mix) -> None:
    """Eyes (upper lids raised by AU2), brows (AU1, AU2, AU4) and the frown lines between them."""
    s, cx = p["s"], p["cx"]
    aa = cv2.LINE_AA
    for side in (-1, 1):
        ex, ey = cx + side * p["eye_dx"], p["eye_y"]
        # eye: sclera, iris, upper lid (raised by AU2)
        cv2.ellipse(img, tuple(_p((ex, ey))), tuple(_p((p["eye_w"], p["eye_h"] - d["lid_dy"] * k * 0.5))),
                    0, 0, 360, (235, 240, 240), -1, aa, _SHIFT)
        cv2.circle(img, tuple(_p((ex, ey))), int(round(p["eye_h"] * 0.8 * _ONE)),
                   tuple(float(v) for v in p["iris"]), -1, aa, _SHIFT)
        lid = _curve((ex - p["eye_w"], ey), (ex, ey - p["eye_h"] + d["lid_dy"] * k), (ex + p["eye_w"], ey))
        cv2.polylines(img, [_p(lid)], False, dark, max(1, int(round(s))), aa, _SHIFT)
        # brow: inner end near the midline, outer end above the eye's outer corner
        by = ey - p["brow_gap"]
        inner = (ex - side * p["brow_len"] * 0.55 + side * d["brow_in_dx"] * k, by + d["brow_in_dy"] * k)
        outer = (ex + side * p["brow_len"] * 0.6, by + d["brow_out_dy"] * k + s)
        mid = ((inner[0] + outer[0]) / 2, (inner[1] + outer[1]) / 2 - p["brow_arch"])
        cv2.polylines(img, [_p(_curve(inner, mid, outer))], False, tuple(float(v) for v in p["hair"]),
                      p["brow_thick"], aa, _SHIFT)
    # vertical frown lines between the brows (deepened by AU4)
    gy, glab = p["eye_y"] - p["brow_gap"], min(1.0, p["glabella0"] + 0.5 * k * d["glabella"])
    for gx in (-1.5 * s, 1.5 * s):
        cv2.line(img, tuple(_p((cx + gx, gy - 3 * s))), tuple(_p((cx + gx, gy + 2 * s))), mix(glab), 1, aa, _SHIFT)


def _draw_nose(img, p, d, k, dark, mix) -> None:
    """Nose sides, nostrils (raised and widened by AU9) and bridge creases."""
    cx = p["cx"]
    aa = cv2.LINE_AA
    ny, nw = p["nose_y"], p["nose_w"]
    top = p["eye_y"] + p["eye_h"]
    nos_dy, nos_dx = d["nostril_dy"] * k, d["nostril_dx"] * k
    for side in (-1, 1):
        cv2.polylines(img, [_p(_curve((cx + side * nw * 0.35, top), (cx + side * nw * 0.6, (top + ny) / 2),
                                      (cx + side * (nw + nos_dx), ny + nos_dy)))], False, mix(0.5), 1, aa, _SHIFT)
        cv2.ellipse(img, tuple(_p((cx + side * (nw * 0.5 + nos_dx), ny + nos_dy))),
                    tuple(_p((nw * 0.28, nw * 0.16))), 0, 0, 360, dark, -1, aa, _SHIFT)
    crease = min(1.0, p["crease0"] + 0.5 * k * d["crease"])
    for i in range(3):
        yy = top + (ny - top) * (0.2 + 0.12 * i)
        cv2.line(img, tuple(_p((cx - nw * 0.5, yy))), tuple(_p((cx + nw * 0.5, yy))), mix(crease), 1, aa, _SHIFT)


def _draw_mouth(img, p, d, k, jaw, mix) -> None:
    """Mouth (AU12, AU15, AU9, AU26), nasolabial folds and chin crease."""
    s, cx, ny, nw = p["s"], p["cx"], p["nose_y"], p["nose_w"]
    aa = cv2.LINE_AA
    my, mw, lh = p["mouth_y"], p["mouth_w"], p["lip_h"]
    cdy, cdx = d["corner_dy"] * k, d["corner_dx"] * k
    left, right = (cx - mw - cdx, my + cdy), (cx + mw + cdx, my + cdy)
    up_top = (cx, my - lh * 1.2 + d["lip_up_dy"] * k)
    gap = p["gap0"] + jaw * 0.8
    up_mid, low_mid = (cx, my + d["lip_up_dy"] * k * 0.5), (cx, my + gap)
    low_bot = (cx, my + gap + lh * 1.4)
    upper = np.vstack([_curve(left, up_top, right), _curve(right, up_mid, left)])
    lower = np.vstack([_curve(left, low_mid, right), _curve(right, low_bot, left)])
    if gap > 0.2:
        opening = np.vstack([_curve(left, up_mid, right), _curve(right, low_mid, left)])
        cv2.fillPoly(img, [_p(opening)], (40, 30, 50), aa, _SHIFT)
    lips = tuple(float(v) for v in np.clip(p["lips"], 0, 255))
    cv2.fillPoly(img, [_p(upper)], lips, aa, _SHIFT)
    cv2.fillPoly(img, [_p(lower)], lips, aa, _SHIFT)
    for corner in (left, right):  # the shaded commissures make the corners' motion visible
        cv2.circle(img, tuple(_p(corner)), int(round(1.3 * s * _ONE)), mix(0.7), -1, aa, _SHIFT)
    # nasolabial folds (deepened by AU12) and chin crease (follows the jaw)
    for side, corner in ((-1, left), (1, right)):
        fold = _curve((cx + side * nw * 1.2, ny), (cx + side * (mw * 0.95 + cdx * 0.5), (ny + my) / 2),
                      (corner[0] + side * 2 * s, corner[1]))
        cv2.polylines(img, [_p(fold)], False, mix(min(1.0, p["fold0"] + 0.6 * k * d["fold"])), 1, aa, _SHIFT)
    chin_y = my + gap + lh * 1.4 + 5 * s + jaw * 0.3
    cv2.polylines(img, [_p(_curve((cx - mw * 0.5, chin_y), (cx, chin_y + 1.5 * s), (cx + mw * 0.5, chin_y)))],
                  False, mix(0.4), 1, aa, _SHIFT)


def _render(p, d, k, pose, rng_noise) -> np.ndarray:
    """One BGR uint8 frame: subject ``p``, displacements ``d``, intensity ``k``, head ``pose``."""
    h, w = p["texture"].shape[:2]
    cx, cy, a, b = p["cx"], p["cy"], p["a"], p["b"]
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.clip(p["bg"], 0, 255).astype(np.uint8)
    aa = cv2.LINE_AA
    skin = tuple(float(v) for v in np.clip(p["skin"], 0, 255))
    dark = tuple(float(v) for v in np.clip(p["skin"] * 0.45, 0, 255))

    def mix(amount):  # skin darkened by ``amount`` (0..1): creases that appear with an AU
        return tuple(float(v) for v in np.clip(p["skin"] * (1 - 0.45 * amount), 0, 255))

    # hair, then face; the jaw drop stretches the lower face downwards.
    jaw = d["jaw_dy"] * k
    cv2.ellipse(img, tuple(_p((cx, cy - p["hair_drop"]))), tuple(_p((a * 1.08, b * 0.8))), 0, 0, 360,
                tuple(float(v) for v in p["hair"]), -1, aa, _SHIFT)
    cv2.ellipse(img, tuple(_p((cx, cy + jaw / 2))), tuple(_p((a, b + jaw / 2))), 0, 0, 360, skin, -1, aa, _SHIFT)
    cv2.ellipse(img, tuple(_p((cx, cy - p["hair_drop"] * 1.35))), tuple(_p((a * 0.95, b * 0.42))), 0,
                180, 360, tuple(float(v) for v in p["hair"]), -1, aa, _SHIFT)

    _draw_eyes_and_brows(img, p, d, k, dark, mix)
    _draw_nose(img, p, d, k, dark, mix)
    _draw_mouth(img, p, d, k, jaw, mix)

    # texture and lighting are fixed to the face, so they are applied before the head pose
    out = (img.astype(np.float32) + p["texture"]) * p["light"]
    dx, dy, angle, scale = pose
    m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    m[:, 2] += (dx, dy)
    out = cv2.warpAffine(out, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out += rng_noise.standard_normal(out.shape, dtype=np.float32) * np.float32(p["noise"])
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _intensity(n_frames, onset_i, apex_i, offset_i) -> np.ndarray:
    """Smooth 0→1→0 profile: 0 up to onset, 1 at apex, 0 again from offset."""
    t = np.arange(n_frames, dtype=np.float64)
    k = np.zeros(n_frames)
    rise = (t >= onset_i) & (t <= apex_i)
    fall = (t > apex_i) & (t <= offset_i)
    u = (t[rise] - onset_i) / max(apex_i - onset_i, 1)
    k[rise] = u * u * (3 - 2 * u)
    v = (offset_i - t[fall]) / max(offset_i - apex_i, 1)
    k[fall] = v * v * (3 - 2 * v)
    return k


def _write_coding(path: Path, records: list[dict]) -> None:
    """Write the coding spreadsheet as CASME II's (incl. an unnamed blank column)."""
    from openpyxl import Workbook  # only needed to write the set; keeps `import kerasmer` light

    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame",
               "Action Units", "Estimated Emotion"])
    for r in records:
        ws.append([r["subject"], r["clip"], None, r["onset"], r["apex"], r["offset"], r["aus"], r["emotion"]])
    fixed = datetime.datetime(2014, 5, 8)  # a fixed timestamp keeps the file identical per seed
    wb.properties.created = wb.properties.modified = fixed
    wb.save(path)


def _reuse_or_clear(root: Path, params: dict, overwrite: bool) -> bool:
    """True if ``root`` holds a set made with ``params``; else clear our own earlier set (or refuse a foreign folder)."""
    marker = root / MARKER_NAME
    if marker.is_file():
        if json.loads(marker.read_text()) == params:
            return True
        overwrite = True  # our own earlier set: replace it
    if overwrite:
        shutil.rmtree(root / "CASME2-RAW", ignore_errors=True)
        (root / CODING_NAME).unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
    elif root.exists() and any(root.iterdir()):
        raise FileExistsError(f"make_synthetic: {root} is not empty and holds no synthetic set; "
                              "choose an empty folder or pass overwrite=True")
    return False


def _write_clip(rng, p: dict, emotion: str, subject_dir: Path, ep: int, *, fps: float, span_max: int,
                amplitude: float) -> dict:
    """Draw one clip of subject ``p`` (in a fixed order from ``rng``), write its frames; its coding-sheet record."""
    span = int(np.clip(round(rng.uniform(0.1, 0.2) * fps), 2, span_max))
    pre, post = int(rng.integers(2, 7)), int(rng.integers(2, 7))
    apex_i = pre + int(np.clip(round(span * rng.uniform(0.3, 0.6)), 1, span - 1))
    n = pre + span + 1 + post
    k = _intensity(n, pre, apex_i, pre + span)
    amp = amplitude * p["s"] * p["style"] * rng.uniform(0.75, 1.25)
    d = _au_displacements(EXPRESSION_AUS[emotion], amp)
    # per-clip resting pose (the subject sits a little differently each time)
    base = (rng.normal(0, 2.0 * p["s"]), rng.normal(0, 2.0 * p["s"]), rng.normal(0, 1.5),
            rng.uniform(0.97, 1.03))
    # head jitter: slow drift (two sinusoids) plus tremor, about a pixel
    ph = rng.uniform(0, 2 * np.pi, 4)
    tt = np.arange(n) / fps
    drift = 0.4 * p["s"] * np.stack([np.sin(2 * np.pi * 1.3 * tt + ph[0]),
                                     np.sin(2 * np.pi * 0.9 * tt + ph[1])])
    tremor = rng.normal(0, 0.2 * p["s"], (2, n))
    rot = 0.4 * np.sin(2 * np.pi * 1.1 * tt + ph[2]) + rng.normal(0, 0.1, n)
    noise_rng = np.random.default_rng(rng.integers(2**63))
    start = int(rng.integers(1, 300))  # real CASME II clips start at img<first frame>, not 0
    clip = f"EP{ep:02d}_{int(rng.integers(1, 4)):02d}"
    folder = subject_dir / clip
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pose = (base[0] + drift[0, i] + tremor[0, i], base[1] + drift[1, i] + tremor[1, i],
                base[2] + rot[i], base[3])
        frame = _render(p, d, k[i], pose, noise_rng)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
        (folder / f"img{start + i}.jpg").write_bytes(buf.tobytes())
    return {"clip": clip, "onset": start + pre, "apex": start + apex_i, "offset": start + pre + span,
            "aus": "+".join(map(str, EXPRESSION_AUS[emotion])), "emotion": emotion}


def make_synthetic(root, *, subjects: int = 8, clips_per_class: int = 4,
                   classes=("negative", "positive", "surprise"), fps: float = 200, seed: int = 0,
                   image_size=(128, 128), amplitude: float = 3.5, overwrite: bool = False) -> Path:
    """Write a synthetic micro-expression set in CASME II's on-disk format.

    Args:
        root: folder to write into (created if needed).  If it already holds a set
            made with the same arguments, it is reused as is; a set made with other
            arguments is replaced; a folder holding anything else is refused
            unless ``overwrite``.
        subjects: number of subjects (``sub01``..).
        clips_per_class: clips per class and subject.
        classes: class names, written to "Estimated Emotion"; each must be one of
            ``EXPRESSION_AUS`` (it decides which AUs move).
        fps: frame rate; the movement (onset..offset) lasts 0.1–0.2 s of it.
        seed: random seed; the same seed gives pixel-identical frames and the
            same spreadsheet.
        image_size: (height, width) of the frames.
        amplitude: peak movement in pixels at 128-pixel scale (a clip's own peak
            is this × 0.75–1.25 × the subject's expressiveness).
        overwrite: replace whatever ``root`` holds.

    Returns:
        ``root`` as a ``pathlib.Path``, to pass to ``read_dataset("casme2", root)``.

    Example:
        >>> from kerasmer.data import make_synthetic, read_dataset
        >>> df = read_dataset("casme2", make_synthetic("/tmp/kerasmer_syn", subjects=4))  # doctest: +SKIP
    """
    classes = tuple(str(c).strip().lower() for c in classes)
    unknown = [c for c in classes if c not in EXPRESSION_AUS]
    if unknown or len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"make_synthetic: classes must be distinct names from {sorted(EXPRESSION_AUS)}; "
                         f"got {classes}")
    if not 1 <= subjects <= 99 or clips_per_class < 1 or fps <= 0:
        raise ValueError("make_synthetic: need 1 <= subjects <= 99, clips_per_class >= 1, fps > 0")
    h, w = int(image_size[0]), int(image_size[1])
    if h < 32 or w < 32:
        raise ValueError(f"make_synthetic: image_size {image_size} is too small (min 32×32)")
    root = Path(root)
    params = {"version": _FORMAT_VERSION, "subjects": subjects, "clips_per_class": clips_per_class,
              "classes": list(classes), "fps": float(fps), "seed": int(seed), "image_size": [h, w],
              "amplitude": float(amplitude)}
    marker = root / MARKER_NAME
    if _reuse_or_clear(root, params, overwrite):
        return root
    rng = np.random.default_rng(seed)
    span_max = max(2, int(np.floor(0.2 * fps)))  # frames from onset to offset: ≤ 1/5 s
    records = []
    for si in range(subjects):
        p = _subject_params(rng, (h, w))
        labels = [c for c in classes for _ in range(clips_per_class)]
        order = rng.permutation(len(labels))  # the EP number must not give the class away
        for ci, li in enumerate(order):
            records.append(_write_clip(rng, p, labels[li], root / "CASME2-RAW" / f"sub{si + 1:02d}", ci + 1,
                                       fps=fps, span_max=span_max, amplitude=amplitude) | {"subject": si + 1})
    root.mkdir(parents=True, exist_ok=True)
    _write_coding(root / CODING_NAME, records)
    marker.write_text(json.dumps(params))
    return root


__all__ = ["EXPRESSION_AUS", "make_synthetic"]
