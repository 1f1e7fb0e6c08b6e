"""Drawing one synthetic face frame: subjects, action units (AUs) and the renderer.

Used by :mod:`kerasmer.data.synthetic.generate` (and re-exported there).  A subject
(:func:`_subject_params`) is a face geometry plus skin, hair, background, lighting,
texture and camera noise; an AU set becomes landmark displacements
(:func:`_au_displacements`); :func:`_render` draws the face at a movement intensity
``k`` (0 = neutral, 1 = apex) and a head pose.  Everything that changes the image
with an AU scales with the AU's amplitude, creases included, so at amplitude 0
nothing moves (the fix of issue 12: creases used to switch on at full strength).

AU semantics follow the FACS manual (Ekman, Friesen & Hager, 2002); which AUs make up
each emotion class follows the CASME II / SAMM coding practice (Yan et al., PLoS ONE
2014, table 2; Davison et al., IEEE TAC 2018).
"""

from __future__ import annotations

import cv2
import numpy as np

# Class name -> the class's canonical AUs (CASME II's "Action Units" notation).
EXPRESSION_AUS = {
    "positive": (12,), "happiness": (12,),
    "negative": (4, 9), "disgust": (4, 9),
    "surprise": (1, 2, 26),
    "sadness": (1, 4, 15),
    "fear": (1, 2, 4),
    "repression": (15, 17),
    "anger": (4, 7, 24),
    "contempt": (14,),
    "others": (4, 14), "other": (4, 14),
}
# Other AU sets seen for each class in the coded datasets: a clip draws one of these (or the canonical set)
# when AU variation is on, so which AUs fire varies within a class.  ``others`` overlaps every other class.
AU_VARIANTS = {
    "happiness": ((12,), (6, 12), (12, 25), (6, 12, 25)),
    "positive": ((12,), (6, 12), (12, 25), (6, 12, 25)),
    "surprise": ((1, 2), (1, 2, 5), (1, 2, 26), (1, 2, 25, 26), (5, 26)),
    "disgust": ((4,), (9,), (4, 9), (9, 10), (4, 7), (4, 10)),
    "negative": ((4,), (9,), (4, 9), (9, 10), (4, 7), (1, 4, 15), (4, 7, 24)),
    "repression": ((14,), (15,), (17,), (24,), (15, 17), (14, 24), (17, 24)),
    "others": ((4,), (1,), (2,), (7,), (10,), (12,), (14,), (15,), (17,), (25,), (1, 4), (6,), (1, 2)),
    "anger": ((4,), (4, 7), (4, 7, 24), (4, 24), (7, 24)),
    "contempt": ((14,), (12, 14)),
    "sadness": ((1, 4, 15), (1, 15), (4, 15), (15, 17)),
    "fear": ((1, 2, 4), (1, 4), (1, 2, 4, 25), (4, 5)),
}
AU_VARIANTS["other"] = AU_VARIANTS["others"]
KNOWN_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 24, 25, 26)
CREASE_PER_PX = 1 / 3.5  # crease visibility per pixel of movement at 128-px scale (3.5 px -> fully visible)
_SHIFT = 4  # OpenCV sub-pixel drawing: coordinates carry 4 fractional bits
_ONE = 1 << _SHIFT
_KEYS = ("brow_in_dy", "brow_out_dy", "brow_in_dx", "lid_dy", "lid_close", "nostril_dy", "nostril_dx",
         "lip_up_dy", "corner_dy", "corner_dx", "jaw_dy", "gap_dy", "chin_dy", "lip_press",
         "glabella", "crease", "fold", "crow", "dimple", "chin")


def _p(pts) -> np.ndarray:
    """Float points -> OpenCV fixed-point int32 (sub-pixel, for smooth small motion)."""
    return np.round(np.asarray(pts, np.float64) * _ONE).astype(np.int32)


def _bezier_weights(n) -> np.ndarray:
    t = np.linspace(0, 1, n)
    return np.stack([(1 - t) ** 2, 2 * (1 - t) * t, t**2], axis=1)


_BEZIER: dict[int, np.ndarray] = {}


def _curve(a, mid, b, n=9) -> np.ndarray:
    """Quadratic curve from a to b that passes through ``mid`` at its middle."""
    a, mid, b = np.asarray(a, np.float64), np.asarray(mid, np.float64), np.asarray(b, np.float64)
    w = _BEZIER[n] if n in _BEZIER else _BEZIER.setdefault(n, _bezier_weights(n))
    return w @ np.stack([a, 2 * mid - 0.5 * (a + b), b])


def _smooth_noise(rng, shape, cells, amp) -> np.ndarray:
    """Low-frequency noise: a random grid upsampled with bicubic interpolation."""
    h, w = shape
    grid = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) * amp


def _subject_params(rng, size, *, lighting: float = 1.0, camera_noise=(1.0, 3.0)) -> dict:
    """Face geometry, colours, lighting and noise of one subject (pixels of ``size``).

    Args:
        rng: a ``numpy.random.Generator`` (drawn from in a fixed order).
        size: ``(height, width)`` of the frames.
        lighting: scale of the lighting gradient and gain spread (1: the demo's).
        camera_noise: ``(low, high)`` of the subject's camera-noise standard deviation (grey levels).

    Returns:
        The subject's parameters, read by :func:`_render`.

    Example:
        >>> p = _subject_params(np.random.default_rng(0), (64, 64))
        >>> p["texture"].shape
        (64, 64, 3)
    """
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
        "light_dir": rng.uniform(0, 2 * np.pi), "light_grad": rng.uniform(0.15, 0.45) * lighting,
        "gain": 1 + (rng.uniform(0.85, 1.1) - 1) * lighting, "noise": rng.uniform(*camera_noise),
        "style": rng.uniform(0.85, 1.15),  # the subject's expressiveness
        "texture": _smooth_noise(rng, size, 6, 7.0) + _smooth_noise(rng, size, 24, 2.5),
    }
    # lighting: a linear ramp in a random direction times a global gain
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xx - cx) * np.cos(p["light_dir"]) + (yy - cy) * np.sin(p["light_dir"])) / max(h, w)
    p["light"] = (p["gain"] * (1 + p["light_grad"] * ramp))[..., None].astype(np.float32)
    return p


def _au_displacements(aus, amp, *, crease: float = CREASE_PER_PX, scale: float = 1.0, strengths=None) -> dict:
    """Pixel displacements of the facial landmarks for AU set ``aus`` at amplitude ``amp``.

    Args:
        aus: AU numbers (of ``KNOWN_AUS``; others draw nothing).
        amp: the movement's peak in pixels of the frame.
        crease: crease visibility per pixel of movement at 128-px scale; creases scale with
            ``amp`` like every other change, so ``amp=0`` draws nothing.
        scale: frame size / 128 (turns ``amp`` back into 128-px units for the creases).
        strengths: ``{au: factor}`` per-AU strength (default 1 each).

    Returns:
        Keys brow_in_dy/brow_out_dy/brow_in_dx (dx towards the midline), lid_dy, lid_close,
        nostril_dy/nostril_dx, lip_up_dy, corner_dy/corner_dx, jaw_dy, gap_dy, chin_dy, lip_press
        (pixels) and the visibility (0..) of glabella lines, nose creases, nasolabial folds,
        crow's feet, dimples and the chin crease.

    Example:
        >>> _au_displacements((12,), 0.0)["fold"]
        0.0
    """
    d = dict.fromkeys(_KEYS, 0.0)
    strengths = strengths or {}
    for au in aus:
        a = amp * float(strengths.get(au, 1.0))
        v = crease * a / max(scale, 1e-6)  # crease visibility tied to the movement
        _apply_au(d, int(au), a, v)
    return d


def _apply_au(d: dict, au: int, a: float, v: float) -> None:
    """Add AU ``au`` at amplitude ``a`` pixels (crease visibility ``v``) to displacements ``d``."""
    if au == 1:  # inner brow raiser
        d["brow_in_dy"] -= a
    elif au == 2:  # outer brow raiser, upper lids follow
        d["brow_out_dy"] -= a
        d["lid_dy"] -= 0.35 * a
    elif au == 4:  # brow lowerer: down and together
        d["brow_in_dy"] += a
        d["brow_out_dy"] += 0.4 * a
        d["brow_in_dx"] += 0.6 * a
        d["glabella"] += v
    elif au == 5:  # upper lid raiser
        d["lid_dy"] -= 0.6 * a
    elif au == 6:  # cheek raiser: lower lids up, crow's feet
        d["lid_close"] += 0.4 * a
        d["crow"] += v
    elif au == 7:  # lid tightener
        d["lid_close"] += 0.6 * a
    elif au == 9:  # nose wrinkler
        d["nostril_dy"] -= 0.7 * a
        d["nostril_dx"] += 0.3 * a
        d["lip_up_dy"] -= 0.4 * a
        d["crease"] += v
    elif au == 10:  # upper lip raiser
        d["lip_up_dy"] -= 0.8 * a
        d["fold"] += 0.5 * v
    elif au == 12:  # lip corner puller
        d["corner_dy"] -= 1.2 * a
        d["corner_dx"] += 0.8 * a
        d["fold"] += v
    elif au == 14:  # dimpler: corners tightened inwards, dimples
        d["corner_dx"] -= 0.6 * a
        d["dimple"] += v
    elif au == 15:  # lip corner depressor
        d["corner_dy"] += 0.8 * a
    elif au == 17:  # chin raiser: lower lip pushed up, chin crease
        d["chin_dy"] -= 0.8 * a
        d["chin"] += v
    elif au == 24:  # lip pressor: lips thinner
        d["lip_press"] += 0.5 * a
    elif au == 25:  # lips part
        d["gap_dy"] += 0.6 * a
    elif au == 26:  # jaw drop
        d["jaw_dy"] += 1.1 * a


def _draw_eyes_and_brows(img, p, d, k, dark, mix, blink) -> None:
    """Eyes (lids raised by AU2/AU5, narrowed by AU6/AU7 and blinks), brows (AU1, AU2, AU4), frown lines."""
    s, cx = p["s"], p["cx"]
    aa = cv2.LINE_AA
    for side in (-1, 1):
        ex, ey = cx + side * p["eye_dx"], p["eye_y"]
        close = d.get("lid_close", 0.0) * k
        rest_h = max(0.3 * s, p["eye_h"] - d["lid_dy"] * k * 0.5 - close * 0.5)
        open_h = rest_h * (1 - 0.9 * blink)
        cv2.ellipse(img, tuple(_p((ex, ey))), tuple(_p((p["eye_w"], open_h))), 0, 0, 360, (235, 240, 240), -1,
                    aa, _SHIFT)
        iris_r = min(p["eye_h"] * 0.8, open_h)
        cv2.circle(img, tuple(_p((ex, ey))), int(round(iris_r * _ONE)), tuple(float(v) for v in p["iris"]), -1,
                   aa, _SHIFT)
        lid_top = ey - p["eye_h"] + d["lid_dy"] * k + close * 0.5 + (rest_h - open_h)
        lid = _curve((ex - p["eye_w"], ey), (ex, lid_top), (ex + p["eye_w"], ey))
        cv2.polylines(img, [_p(lid)], False, dark, max(1, int(round(s))), aa, _SHIFT)
        crow = d.get("crow", 0.0) * k
        if crow > 0:  # crow's feet at the outer corner (AU6)
            for dy in (-1.5 * s, 0.0, 1.5 * s):
                x0 = ex + side * (p["eye_w"] + 1.5 * s)
                cv2.line(img, tuple(_p((x0, ey + dy))), tuple(_p((x0 + side * 3 * s, ey + 1.5 * dy))),
                         mix(min(1.0, 0.6 * crow)), 1, aa, _SHIFT)
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
    """Mouth (AU10, AU12, AU14, AU15, AU17, AU24, AU25, AU26, AU9), nasolabial folds, dimples, chin crease."""
    s, cx, ny, nw = p["s"], p["cx"], p["nose_y"], p["nose_w"]
    aa = cv2.LINE_AA
    my, mw = p["mouth_y"], p["mouth_w"]
    lh = max(0.6 * s, p["lip_h"] - d.get("lip_press", 0.0) * k)
    cdy, cdx = d["corner_dy"] * k, d["corner_dx"] * k
    left, right = (cx - mw - cdx, my + cdy), (cx + mw + cdx, my + cdy)
    up_top = (cx, my - lh * 1.2 + d["lip_up_dy"] * k)
    gap = max(0.0, p["gap0"] + jaw * 0.8 + d.get("gap_dy", 0.0) * k + d.get("chin_dy", 0.0) * k * 0.5)
    up_mid, low_mid = (cx, my + d["lip_up_dy"] * k * 0.5), (cx, my + gap)
    low_bot = (cx, my + gap + lh * 1.4 + d.get("chin_dy", 0.0) * k * 0.5)
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
    dimple = d.get("dimple", 0.0) * k
    for side, corner in ((-1, left), (1, right)):
        fold = _curve((cx + side * nw * 1.2, ny), (cx + side * (mw * 0.95 + cdx * 0.5), (ny + my) / 2),
                      (corner[0] + side * 2 * s, corner[1]))
        cv2.polylines(img, [_p(fold)], False, mix(min(1.0, p["fold0"] + 0.6 * k * d["fold"])), 1, aa, _SHIFT)
        if dimple > 0:  # AU14's dimples just outside the corners
            cv2.circle(img, tuple(_p((corner[0] + side * 3 * s, corner[1]))), int(round(1.0 * s * _ONE)),
                       mix(min(1.0, 0.6 * dimple)), -1, aa, _SHIFT)
    chin_y = my + gap + lh * 1.4 + 5 * s + jaw * 0.3 + d.get("chin_dy", 0.0) * k
    chin = min(1.0, 0.4 + 0.4 * d.get("chin", 0.0) * k)
    cv2.polylines(img, [_p(_curve((cx - mw * 0.5, chin_y), (cx, chin_y + 1.5 * s), (cx + mw * 0.5, chin_y)))],
                  False, mix(chin), 1, aa, _SHIFT)


def _render(p, d, k, pose, rng_noise, *, blink: float = 0.0, gain: float = 1.0) -> np.ndarray:
    """One BGR uint8 frame: subject ``p``, displacements ``d``, intensity ``k``, head ``pose``.

    Args:
        p: a subject (:func:`_subject_params`).
        d: displacements (:func:`_au_displacements`).
        k: movement intensity, 0 (neutral) .. 1 (apex).
        pose: ``(dx, dy, angle_degrees, scale)`` of the head.
        rng_noise: generator for the camera noise.
        blink: eyelid closure of a blink, 0 (open) .. 1 (closed): a distractor.
        gain: global brightness factor of this frame (lighting flicker).

    Returns:
        ``(height, width, 3)`` uint8 BGR frame.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> p = _subject_params(rng, (64, 64))
        >>> _render(p, _au_displacements((12,), 1.0), 1.0, (0, 0, 0, 1), rng).shape
        (64, 64, 3)
    """
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

    _draw_eyes_and_brows(img, p, d, k, dark, mix, blink)
    _draw_nose(img, p, d, k, dark, mix)
    _draw_mouth(img, p, d, k, jaw, mix)

    # texture and lighting are fixed to the face, so they are applied before the head pose
    out = (img.astype(np.float32) + p["texture"]) * (p["light"] * np.float32(gain))
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


__all__ = ["AU_VARIANTS", "CREASE_PER_PX", "EXPRESSION_AUS", "KNOWN_AUS"]
