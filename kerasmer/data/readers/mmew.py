"""MMEW reader: ``read_dataset("mmew", root)``.

Reference: X. Ben et al., "Video-based Facial Micro-Expression Analysis: A
Survey of Datasets, Features and Algorithms", IEEE TPAMI 44(9), 2022.  MMEW:
36 subjects, 300 micro-expressions recorded at 90 fps.

Expected layout under ``root``::

    MMEW_Micro_Exp.xlsx                         # any MMEW_Micro_Exp*.xlsx, any subfolder
    Micro_Expression/happiness/S01-01-001/1.jpg # or MMEW/Micro_Expression/...

Columns: Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units,
Estimated Emotion (and remarks).  A clip's frames are in
``Micro_Expression/<emotion>/<Filename>/``: the emotion folder is the clip's
Estimated Emotion (matched case-insensitively).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerasmer.data.readers import register_reader
from kerasmer.data.readers._common import AnnotationError, cell_text, find_dir, find_file, read_xlsx, subject_id
from kerasmer.data.readers._sheet_reader import build_rows, find_child, pick_columns

DATASET = "mmew"
FPS = 90.0
SPREADSHEET_PATTERNS = ("MMEW_Micro_Exp.xlsx", "MMEW_Micro_Exp*.xls*")
ALIASES = {
    "subject": ("Subject",), "clip": ("Filename",),
    "onset": ("OnsetFrame", "Onset Frame", "Onset"), "apex": ("ApexFrame", "Apex Frame", "Apex"),
    "offset": ("OffsetFrame", "Offset Frame", "Offset"),
    "action_units": ("Action Units", "AU", "AUs"), "emotion": ("Estimated Emotion", "Emotion"),
}


@register_reader(DATASET)
def read_mmew(root, *, annotation=None, errors: str = "raise", fixes=True,
              check_frames: bool = False, on_mismatch: str = "fix") -> pd.DataFrame:
    """Read MMEW micro-expressions.

    Args:
        root: the dataset root folder.
        annotation: path of ``MMEW_Micro_Exp.xlsx``; default: found under ``root``.
        errors: ``"raise"`` (default) or ``"drop"`` rows still invalid after the fixes.
        fixes: ``True`` (packaged table), ``False``, or your own table.
        check_frames: also decode each clip's onset, apex and offset frames.
        on_mismatch: ``"fix"`` (default), ``"clip"`` or ``"drop"``: a clip whose onset..offset
            disagrees with the frames in its folder is corrected by the fix table or raises; is clamped
            to the frames present; or is left out (:mod:`kerasmer.data.readers._mismatch`).

    Returns:
        The schema DataFrame; ``subject`` as in the sheet (``"S01"``; numbers are
        written ``S01``), ``clip`` the Filename, ``fps`` 90; extra column ``fixes``.

    Raises:
        AnnotationError: missing spreadsheet or columns, a missing clip folder,
            frames outside the folder, apex outside onset..offset; names the file
            and row.

    Example:
        >>> df = read_dataset("mmew", "/data/MMEW")  # doctest: +SKIP
    """
    root = Path(root)
    xlsx = Path(annotation) if annotation is not None else find_file(
        root, SPREADSHEET_PATTERNS, dataset=DATASET, what="MMEW_Micro_Exp spreadsheet")
    table = read_xlsx(xlsx, dataset=DATASET)
    cols = pick_columns(table, ALIASES, dataset=DATASET, file=xlsx, optional=("action_units",))
    frames = find_dir(root, ["Micro_Expression", "MMEW/Micro_Expression"], dataset=DATASET,
                      what="Micro_Expression folder")

    def subject_of(rec):
        text = subject_id(rec[cols["subject"]])
        return f"S{int(text):02d}" if text.isdigit() else text

    def clip_of(rec, onset):
        return cell_text(rec[cols["clip"]])

    def locate(rec, row, subject, clip):
        emotion = cell_text(rec[cols["emotion"]])
        emo_dir = find_child(frames, emotion)
        clip_dir = find_child(emo_dir, clip) if emo_dir is not None else None
        if clip_dir is None or not clip_dir.is_dir():
            raise AnnotationError(DATASET, xlsx, f"clip folder {emotion}/{clip} not found in {frames}", row=row)
        return clip_dir

    return build_rows(table, dataset=DATASET, file=xlsx, cols=cols, fps=FPS, locate=locate,
                      subject_of=subject_of, clip_of=clip_of, errors=errors, fixes=fixes,
                      check_frames=check_frames, on_mismatch=on_mismatch, ident=lambda rec: (subject_of(rec), clip_of(rec, None)))
