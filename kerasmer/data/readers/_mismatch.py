"""Annotation versus frames present: the one policy every reader applies (``on_mismatch``).

A clip's annotation *disagrees with its frames* when a frame number between its
onset and offset has no file in the clip's folder: the folder ends early, starts
late, holds other frames altogether, or has a gap.  (A copy of a release may
differ from the copy an annotation was made on, so these are checked, never
assumed.)  The policies:

``"fix"`` (default)
    a clip with a ``frames`` entry in the fix table whose guards hold (the
    spreadsheet's onset..offset *and* the folder's first..last frame) is corrected
    as the table says; any other disagreeing clip raises
    :class:`FrameMismatch`, naming the file, row, clip and both ranges.
``"clip"``
    onset/offset are clamped to the longest run of consecutive frames present
    inside them (the folder's own longest run where none is inside); an apex
    outside the new range becomes missing.  Each change is warned about once per
    clip and noted in the row's ``fixes`` column; the reader then warns once with
    the count.
``"drop"``
    disagreeing clips are left out; the reader warns once with the count.

Every reader returns ``df.attrs["mismatch"] = {"policy", "changed", "dropped"}``,
``changed``/``dropped`` being lists of ``"subject/clip: what"`` strings, which a
run records in ``run.json`` and ``report.md``.
"""

from __future__ import annotations

import logging
import warnings

from kerasmer.data.readers.fixes import parse_range
from kerasmer.data.schema import AnnotationError

logger = logging.getLogger("kerasmer.data")

POLICIES = ("fix", "clip", "drop")


class FrameMismatch(AnnotationError):
    """A clip's annotated onset..offset disagrees with the frames in its folder."""


def check_policy(on_mismatch: str) -> str:
    """Return ``on_mismatch`` if it is one of :data:`POLICIES`, else raise ``ValueError``.

    Example:
        >>> check_policy("clip")
        'clip'
    """
    if on_mismatch not in POLICIES:
        raise ValueError(f"on_mismatch must be one of {POLICIES}, got {on_mismatch!r}")
    return on_mismatch


def _runs(numbers, lo: int, hi: int) -> list[tuple[int, int]]:
    """Runs of consecutive frame numbers within lo..hi, as ``(first, last)``."""
    runs: list[list[int]] = []
    for n in sorted(n for n in numbers if lo <= n <= hi):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        elif not runs or n != runs[-1][1]:
            runs.append([n, n])
    return [(a, b) for a, b in runs]


def _present(numbers) -> str:
    runs = _runs(numbers, min(numbers), max(numbers)) if numbers else []
    return ", ".join(f"{a}..{b}" for a, b in runs) or "none"


def _table_fix(entry, sheet_range, numbers):
    """The frames present the fix-table entry expects, if both its guards hold; else None (logged)."""
    expected_sheet, expected_frames = parse_range(entry["when"][3:]), parse_range(entry["value"])
    found = (min(numbers), max(numbers)) if numbers else None
    if tuple(sheet_range) == expected_sheet and found == expected_frames \
            and len(_runs(numbers, *found)) == 1:
        return expected_frames
    logger.warning("[%s/%s] fix-table frames entry not applied: expected onset..offset %s and frames %s, "
                   "found %s and frames %s (source: %s)", entry["subject"], entry["clip"], entry["when"][3:],
                   entry["value"], "..".join(map(str, sheet_range)), _present(numbers), entry["source"])
    return None


def reconcile_frames(onset: int, apex, offset: int, numbers, *, policy: str, frame_fix=None,
                     sheet_range=(None, None), where: dict) -> tuple[int, int | None, int, str]:
    """Check onset..offset against the frames present and apply the mismatch policy.

    Args:
        onset, apex, offset: the annotation after the fix table's cell fixes (apex may be None).
        numbers: the frame numbers present in the clip's folder.
        policy: ``"fix"``, ``"clip"`` or ``"drop"`` (module docstring).
        frame_fix: the clip's ``frames`` entry of the fix table, or None.
        sheet_range: ``(onset, offset)`` as the spreadsheet gives them (the entry's first guard).
        where: ``dataset``, ``file``, ``row``, ``clip`` (``"subject/clip"``), ``folder`` for messages.

    Returns:
        ``(onset, apex, offset, note)``; ``note`` is ``""`` when nothing changed.

    Raises:
        FrameMismatch: the clip disagrees with its frames and the policy does not correct it.

    Example:
        >>> w = dict(dataset="x", file="f.xlsx", row=2, clip="01/a", folder="/d")
        >>> reconcile_frames(3, 11, 12, range(3, 11), policy="clip", where=w)
        (3, None, 10, 'frames 3..12->3..10 (on_mismatch=clip); apex 11->missing')
    """
    wanted = offset - onset + 1
    if len(_runs(numbers, onset, offset)) == 1 and sum(onset <= n <= offset for n in numbers) == wanted:
        return onset, apex, offset, ""
    target, how = None, f"on_mismatch={policy}"
    if frame_fix is not None:
        target, how = _table_fix(frame_fix, sheet_range, list(numbers)), f"fix table: {frame_fix['source']}"
    if target is None and policy == "clip":
        inside = _runs(numbers, onset, offset) or _runs(numbers, min(numbers, default=0), max(numbers, default=-1))
        target = max(inside, key=lambda r: r[1] - r[0], default=None)
    if target is None:
        hint = ("; no fix-table entry covers it: pass on_mismatch='clip' (clamp to the frames present) or "
                "'drop' (leave it out)" if policy == "fix" else "")
        gaps = [n for n in range(onset, offset + 1) if n not in set(numbers)]
        what = ("is outside" if numbers and (onset < min(numbers) or offset > max(numbers))
                else f"misses frame(s) {_present(gaps)} of")
        raise FrameMismatch(where["dataset"], where["file"], f"clip {where['clip']}: annotated onset..offset "
                            f"{onset}..{offset} {what} the frames present {_present(numbers)} in "
                            f"{where['folder']}{hint}", row=where["row"])
    lo, hi = max(onset, target[0]), min(offset, target[1])
    new_onset, new_offset = (lo, hi) if lo <= hi else target  # no overlap: the folder defines the clip
    new_apex = apex if apex is not None and new_onset <= apex <= new_offset else None
    note = f"frames {onset}..{offset}->{new_onset}..{new_offset} ({how})"
    if apex is not None and new_apex is None:
        note += f"; apex {apex}->missing"
    return new_onset, new_apex, new_offset, note


class MismatchLog:
    """Collects one reader's mismatch changes and drops, warns, and fills ``df.attrs["mismatch"]``.

    Args:
        dataset: reader name.
        file: the annotation file.
        policy: the ``on_mismatch`` policy.

    Example:
        >>> log = MismatchLog("casme2", "c.xlsx", "clip")
        >>> log.changed("01/a", "frames 3..12->3..10")  # doctest: +SKIP
    """

    def __init__(self, dataset: str, file, policy: str):
        self.dataset, self.file, self.policy = dataset, file, check_policy(policy)
        self.changes: list[str] = []
        self.drops: list[str] = []

    def changed(self, clip: str, note: str) -> None:
        """Record (and, under ``"clip"``, warn about) one clip's change; fix-table changes are logged only."""
        self.changes.append(f"{clip}: {note}")
        if "(fix table" in note:
            logger.info("[%s] %s: clip %s %s", self.dataset, self.file, clip, note)
        else:
            warnings.warn(f"[{self.dataset}] {self.file}: clip {clip} {note}", UserWarning, stacklevel=4)

    def dropped(self, err: FrameMismatch) -> None:
        """Record one left-out clip."""
        self.drops.append(str(err))

    def finish(self, df) -> None:
        """Store the record in ``df.attrs["mismatch"]`` and warn once with the counts."""
        df.attrs["mismatch"] = {"policy": self.policy, "changed": list(self.changes), "dropped": list(self.drops)}
        clipped = [c for c in self.changes if "(fix table" not in c]
        if clipped or self.drops:
            msg = (f"[{self.dataset}] {self.file}: on_mismatch={self.policy!r}: {len(clipped)} clip(s) clamped "
                   f"to their frames, {len(self.drops)} dropped; see df.attrs['mismatch']")
            logger.warning(msg)
            warnings.warn(msg, UserWarning, stacklevel=4)


__all__ = ["FrameMismatch", "MismatchLog", "POLICIES", "check_policy", "reconcile_frames"]
