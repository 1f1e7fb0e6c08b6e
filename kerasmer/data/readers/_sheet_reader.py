"""The spreadsheet-driven reading loop shared by the CASME, SAMM, CAS(ME)², CAS(ME)³ and MMEW readers.

Each of those readers finds its spreadsheet, maps the official column names to
schema fields (:func:`pick_columns`), applies the fix table
(:func:`kerasmer.data.readers.fixes.apply_fixes`) and hands the table to
:func:`build_rows` with a function locating each clip's frames.  Keeping the
loop here means every dataset validates rows, reports errors and honours the
``errors``/``fixes``/``check_frames`` options the same way.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Callable, Sequence

import cv2
import pandas as pd

from kerasmer.data.readers.fixes import RowErrors, apply_fixes, parse_frames
from kerasmer.data.preflight import decode_strict
from kerasmer.data.readers._mismatch import FrameMismatch, MismatchLog, reconcile_frames
from kerasmer.data.readers._common import cell_text, list_frames, make_row, to_frame
from kerasmer.data.schema import AnnotationError


def _norm(name) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).casefold())


def pick_columns(table: pd.DataFrame, aliases: dict, *, dataset: str, file,
                 optional: Sequence[str] = (), row: int | None = 1) -> dict:
    """Map schema fields to the table's columns, accepting known spellings.

    Names are compared ignoring case, spaces and punctuation, so ``"Onset Frame"``,
    ``"OnsetFrame"`` and ``"onset_frame"`` all match.

    Args:
        table: the annotation table.
        aliases: field -> accepted column names, in order of preference.
        dataset, file: for error messages.
        optional: fields that may be absent (mapped to ``None``).
        row: the header's spreadsheet row, named in the error.

    Returns:
        field -> column name in ``table`` (``None`` for an absent optional field).

    Raises:
        AnnotationError: a required field has no column; names the accepted
            spellings and the columns present.

    Example:
        >>> t = pd.DataFrame(columns=["Subject", "Onset Frame"])
        >>> pick_columns(t, {"subject": ["Subject"], "onset": ["OnsetFrame"]}, dataset="x", file="f")
        {'subject': 'Subject', 'onset': 'Onset Frame'}
    """
    present = {_norm(c): c for c in table.columns}
    out, missing = {}, []
    for field, names in aliases.items():
        col = next((present[_norm(n)] for n in names if _norm(n) in present), None)
        if col is None and field not in optional:
            missing.append(f"{field} ({' / '.join(map(repr, names))})")
        out[field] = col
    if missing:
        raise AnnotationError(dataset, file, f"missing column(s): {'; '.join(missing)}; "
                              f"columns present: {list(table.columns)}", row=row)
    return out


def check_decodable(paths: Sequence[str], *, dataset: str, file, row) -> None:
    """Decode the given frames with OpenCV; raise naming the first that fails.

    Example:
        >>> check_decodable([], dataset="samm", file="s.xlsx", row=15)
    """
    for p in paths:
        try:  # strict: a truncated JPEG fails too (OpenCV would decode it half grey)
            decode_strict(p, dataset=dataset, flags=cv2.IMREAD_UNCHANGED)
        except AnnotationError as err:
            raise AnnotationError(dataset, file, f"frame {p} cannot be decoded (corrupt, truncated or not an "
                                  f"image: {str(err).rsplit('(', 1)[-1].rstrip(')')})", row=row) from None


def find_child(folder: Path, name: str) -> Path | None:
    """``folder/name``, else the one child whose name matches case-insensitively, else None.

    Archives unpacked on case-insensitive file systems (or renamed, like
    CAS(ME)³'s ``spNO.1`` vs ``spNo.1``) differ only in case.
    """
    exact = folder / name
    if exact.exists():
        return exact
    if not folder.is_dir():
        return None
    hits = [c for c in folder.iterdir() if c.name.casefold() == name.casefold()]
    return hits[0] if len(hits) == 1 else None


def build_rows(table: pd.DataFrame, *, dataset: str, file, cols: dict, fps: float,
               locate: Callable, subject_of: Callable, clip_of: Callable,
               extra_of: Callable | None = None, errors: str = "raise", fixes=True,
               check_frames: bool = False, long_video: bool = False,
               ident: Callable | None = None, on_mismatch: str = "fix") -> pd.DataFrame:
    """Apply fixes, then validate every record and build the schema DataFrame.

    Args:
        table: annotation table indexed by 1-based spreadsheet row.
        dataset: reader name.
        file: the annotation file.
        cols: field -> column for ``onset``, ``apex``, ``offset``, ``emotion`` and
            ``action_units`` (the last may be ``None``).
        fps: frame rate.
        locate: ``fn(rec, row, subject, clip) -> Path`` of the clip's (or the long
            video's) frame folder; raises ``AnnotationError`` if not found.
        subject_of: ``fn(rec) -> str`` subject id.
        clip_of: ``fn(rec, onset) -> str`` clip id.
        extra_of: ``fn(rec) -> dict`` of extra columns.
        errors: ``"raise"`` or ``"drop"`` (see :class:`~kerasmer.data.readers.fixes.RowErrors`).
        fixes: passed to :func:`~kerasmer.data.readers.fixes.apply_fixes`.
        check_frames: decode the onset, apex and offset frames of each clip.
        long_video: the folder holds a whole recording: keep only onset..offset.
        ident: ``fn(rec) -> (subject, clip)`` for fix-table entries keyed by ids.
        on_mismatch: ``"fix"``, ``"clip"`` or ``"drop"``: what to do with a clip whose
            onset..offset disagrees with the frames present (:mod:`~kerasmer.data.readers._mismatch`).

    Returns:
        The schema DataFrame with the extra column ``fixes``; ``df.attrs`` holds
        ``"fixes_applied"``, ``"dropped"`` and ``"mismatch"``.

    Example:
        >>> df = build_rows(table, dataset="samm", file=xlsx, cols=cols, fps=200,
        ...                 locate=locate, subject_of=sub, clip_of=clip)  # doctest: +SKIP
    """
    errs, mismatch = RowErrors(dataset, file, errors), MismatchLog(dataset, file, on_mismatch)
    table, applied = apply_fixes(table, dataset=dataset, file=file, columns=cols, ident=ident, fixes=fixes)
    ctx = dict(dataset=dataset, file=file, cols=cols, fps=fps, locate=locate, subject_of=subject_of,
               clip_of=clip_of, extra_of=extra_of, check_frames=check_frames, long_video=long_video,
               mismatch=mismatch)
    rows = []
    for row_no, rec in table.iterrows():
        try:
            rows.append(_build_row(rec, row_no, **ctx))
        except FrameMismatch as err:
            if on_mismatch == "drop":  # the policy's own drop, whatever ``errors`` says
                mismatch.dropped(err)
                warnings.warn(f"skipping row: {err}", UserWarning, stacklevel=2)
            else:
                errs.handle(err)
        except AnnotationError as err:
            errs.handle(err)
    df = errs.finish(to_frame(rows, dataset=dataset, file=file), applied)
    mismatch.finish(df)
    return df


def _parse(rec, row_no, *, dataset: str, file, cols: dict, subject_of: Callable) -> tuple:
    """``(subject, onset, apex, offset)`` of one record; errors name the clip."""
    subject = subject_of(rec)
    if not subject or not cell_text(rec[cols["clip"]]):
        raise AnnotationError(dataset, file, "subject or clip name is empty", row=row_no)
    try:
        return (subject, *parse_frames(rec, cols, dataset=dataset, file=file, row=row_no))
    except AnnotationError as err:  # say which clip, as the other row errors do
        name = f"{subject}/{cell_text(rec[cols['clip']])}"
        raise AnnotationError(dataset, file, f"clip {name}: {str(err).split(': ', 1)[-1]}",
                              row=row_no) from err


def _build_row(rec, row_no, *, dataset: str, file, cols: dict, fps: float, locate: Callable,
               subject_of: Callable, clip_of: Callable, extra_of, check_frames: bool, long_video: bool,
               mismatch: MismatchLog) -> dict:
    """One validated schema row (a dict) from one annotation record; raises ``AnnotationError``."""
    subject, onset, apex, offset = _parse(rec, row_no, dataset=dataset, file=file, cols=cols,
                                          subject_of=subject_of)
    clip = clip_of(rec, onset)
    folder = locate(rec, row_no, subject, clip)
    try:
        paths, numbers = list_frames(folder, dataset=dataset)
    except AnnotationError as err:  # name the annotation row, not only the folder
        raise AnnotationError(dataset, file, f"clip {subject}/{clip}: {err}", row=row_no) from err
    onset, apex, offset, note = reconcile_frames(
        onset, apex, offset, numbers, policy=mismatch.policy, frame_fix=rec.get("_frame_fix"),
        sheet_range=rec.get("_sheet_range", (None, None)),
        where=dict(dataset=dataset, file=file, row=row_no, clip=f"{subject}/{clip}", folder=folder))
    if long_video:
        keep = [i for i, n in enumerate(numbers) if onset <= n <= offset]
        paths, numbers = [paths[i] for i in keep], [numbers[i] for i in keep]
    extra = extra_of(rec) if extra_of else {}
    out = make_row(dataset=dataset, subject=subject, clip=clip,
                   emotion=cell_text(rec[cols["emotion"]]), onset=onset, apex=apex, offset=offset,
                   action_units=cell_text(rec[cols["action_units"]]) if cols.get("action_units") else "",
                   frame_paths=paths, frame_numbers=numbers, fps=fps, file=file, row=row_no,
                   fixes="; ".join(n for n in (rec["fixes"], note) if n), **extra)
    if not out["emotion"]:
        raise AnnotationError(dataset, file, f"clip {subject}/{clip}: emotion cell is empty", row=row_no)
    if check_frames:
        wanted = {onset, offset} | ({apex} if apex is not None else set())
        check_decodable([p for p, n in zip(paths, numbers) if n in wanted],
                        dataset=dataset, file=file, row=row_no)
    if note:
        mismatch.changed(f"{subject}/{clip}", note)
    return out


__all__ = ["build_rows", "check_decodable", "find_child", "pick_columns"]
