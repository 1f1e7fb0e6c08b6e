"""CAS(ME)³ part A reader: ``read_dataset("casme3", root)``.

Reference: J. Li et al., "CAS(ME)³: A Third Generation Facial Spontaneous
Micro-Expression Database with Depth Information and High Ecological
Validity", IEEE TPAMI 45(3), 2023.  Part A: 100 subjects, 860 micro-expressions
in long videos recorded at 30 fps.

Expected layout under ``root``::

    cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx   # any cas(me)3_part_A_ME_label*.xlsx, any subfolder
    part_A/data/part_A/spNO.1/a/color/0.jpg     # or data/part_A/..., part_A/..., spNO.1/... under root

The label sheet (``label``, else the first sheet) has the columns Subject
(``spNO.1``), Filename (the video, ``a``), Onset, Apex, Offset, AU, Objective
class and emotion.  Frame numbers are the jpg indices of the video's
``color/`` folder ("JpgIndex").  One video holds several micro-expressions, so
the clip id is ``<Filename>_<Onset>`` (``a_355``), the common naming.
Subject folders spelled ``spNo.1`` are found too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerasmer.data.readers import register_reader
from kerasmer.data.readers._common import AnnotationError, cell_text, find_file, read_xlsx
from kerasmer.data.readers._sheet_reader import build_rows, find_child, pick_columns
from kerasmer.data.readers.samm import objective_class

DATASET = "casme3"
FPS = 30.0
SPREADSHEET_PATTERNS = ("cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", "cas(me)3_part_A_ME_label*.xls*",
                        "*part_A_ME_label*.xls*")
FRAME_TREES = ("part_A/data/part_A", "data/part_A", "part_A", "data", "")
ALIASES = {
    "subject": ("Subject", "sub"), "clip": ("Filename", "seq"),
    "onset": ("Onset", "Onset Frame"), "apex": ("Apex", "Apex Frame"), "offset": ("Offset", "Offset Frame"),
    "action_units": ("AU", "Action Units", "AUs"), "emotion": ("emotion", "Estimated Emotion"),
    "objective": ("Objective class", "Objective classes"),
}


@register_reader(DATASET)
def read_casme3(root, *, annotation=None, sheet="label", errors: str = "raise", fixes=True,
                check_frames: bool = False, on_mismatch: str = "fix") -> pd.DataFrame:
    """Read CAS(ME)³ part A micro-expressions (colour frames).

    Args:
        root: the dataset root folder.
        annotation: path of the ME label spreadsheet; default: found under ``root``.
        sheet: the label sheet's name; the first sheet is used if there is none by
            that name.
        errors: ``"raise"`` (default) or ``"drop"`` rows still invalid after the fixes.
        fixes: ``True`` (packaged table), ``False``, or your own table.
        check_frames: also decode each clip's onset, apex and offset frames.
        on_mismatch: ``"fix"`` (default), ``"clip"`` or ``"drop"``: a clip whose onset..offset
            disagrees with the frames in its folder is corrected by the fix table or raises; is clamped
            to the frames present; or is left out (:mod:`kerasmer.data.readers._mismatch`).

    Returns:
        The schema DataFrame; ``subject`` as in the sheet (``"spNO.1"``), ``clip``
        ``"<video>_<onset>"``, ``frame_paths`` the onset..offset frames of
        ``color/``; extra columns ``video``, ``objective_class`` (``"I"``..``"VII"``)
        and ``fixes``.

    Raises:
        AnnotationError: missing spreadsheet or columns, a missing video folder,
            onset/offset frames absent, apex outside onset..offset; names the file
            and row.

    Example:
        >>> df = read_dataset("casme3", "/data/CASME3")  # doctest: +SKIP
    """
    root = Path(root)
    xlsx = Path(annotation) if annotation is not None else find_file(
        root, SPREADSHEET_PATTERNS, dataset=DATASET, what="part A ME label spreadsheet")
    try:
        with pd.ExcelFile(xlsx, engine="openpyxl" if xlsx.suffix.lower() == ".xlsx" else None) as book:
            sheet_name = sheet if sheet in book.sheet_names else 0
    except Exception as err:  # the same failure read_xlsx reports, with the file named
        raise AnnotationError(DATASET, xlsx, f"cannot read spreadsheet ({type(err).__name__}: {err})") from err
    table = read_xlsx(xlsx, dataset=DATASET, sheet_name=sheet_name)
    cols = pick_columns(table, ALIASES, dataset=DATASET, file=xlsx, optional=("objective", "action_units"))

    def subject_of(rec):
        return cell_text(rec[cols["subject"]])

    def video_of(rec):
        return cell_text(rec[cols["clip"]])

    def locate(rec, row, subject, clip):
        for tree in FRAME_TREES:
            base = root / tree if tree else root
            sub_dir = find_child(base, subject)
            if sub_dir is not None and sub_dir.is_dir():
                video = find_child(sub_dir, video_of(rec))
                color = find_child(video, "color") if video is not None else None
                if color is not None and color.is_dir():
                    return color
                raise AnnotationError(DATASET, xlsx, f"clip {subject}/{clip}: no folder "
                                      f"{sub_dir / video_of(rec) / 'color'}", row=row)
        raise AnnotationError(DATASET, xlsx, f"subject folder {subject!r} not found under {root} "
                              f"(looked in {', '.join(t or '.' for t in FRAME_TREES)})", row=row)

    def extra_of(rec):
        return {"video": video_of(rec),
                "objective_class": objective_class(rec[cols["objective"]]) if cols["objective"] else ""}

    return build_rows(table, dataset=DATASET, file=xlsx, cols=cols, fps=FPS, locate=locate,
                      subject_of=subject_of, clip_of=lambda rec, onset: f"{video_of(rec)}_{onset}",
                      extra_of=extra_of, errors=errors, fixes=fixes, check_frames=check_frames, on_mismatch=on_mismatch,
                      long_video=True, ident=lambda rec: (subject_of(rec), video_of(rec)))
