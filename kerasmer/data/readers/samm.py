"""SAMM reader: ``read_dataset("samm", root)``.

Reference: A. K. Davison et al., "SAMM: A Spontaneous Micro-Facial Movement
Dataset", IEEE Trans. Affective Computing 9(1), 2018.  32 subjects (``006`` ..
``037``), 159 micro-movements recorded at 200 fps.

Expected layout under ``root``::

    SAMM_Micro_FACS_Codes_v2.xlsx      # any SAMM*Micro_FACS_Codes*.xlsx, any subfolder
    SAMM/006/006_1_2/006_05562.jpg     # or 006/006_1_2/... directly under root

The spreadsheet has a block of notes above its header row; the header row is
found by its contents (``Subject``, ``Filename``, ``Onset Frame``), not by a
fixed row number.  Columns: Subject, Filename, Inducement Code, Onset Frame,
Apex Frame, Offset Frame, Duration, Type, Action Units, Notes, Estimated
Emotion, Objective Classes.  An apex of ``-1`` reads as missing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerasmer.data.readers import register_reader
from kerasmer.data.readers._common import (
    AnnotationError, cell_text, find_file, find_header_row, read_xlsx, read_xlsx_raw, subject_id,
)
from kerasmer.data.readers._sheet_reader import build_rows, find_child, pick_columns

DATASET = "samm"
FPS = 200.0
SPREADSHEET_PATTERNS = ("SAMM_Micro_FACS_Codes_v*.xlsx", "SAMM*Micro_FACS_Codes*.xls*")
FRAME_TREES = ("SAMM", "SAMM_CROP", "")
ALIASES = {
    "subject": ("Subject",), "clip": ("Filename",),
    "onset": ("Onset Frame", "Onset"), "apex": ("Apex Frame", "Apex"), "offset": ("Offset Frame", "Offset"),
    "action_units": ("Action Units", "AU", "AUs"), "emotion": ("Estimated Emotion", "Emotion"),
    "objective": ("Objective Classes", "Objective Class"),
}
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")


def objective_class(value) -> str:
    """Normalise an objective-class cell (``1``, ``"1"``, ``"I"``) to a Roman numeral; ``""`` if blank.

    Example:
        >>> objective_class(3), objective_class(" iv "), objective_class(None)
        ('III', 'IV', '')
    """
    text = cell_text(value)
    if text.isdigit() and 1 <= int(text) <= len(ROMAN):
        return ROMAN[int(text) - 1]
    return text.upper()


def _frame_root(root: Path, subject: str) -> Path | None:
    for tree in FRAME_TREES:
        base = root / tree if tree else root
        if (base / subject).is_dir():
            return base
    return None


@register_reader(DATASET)
def read_samm(root, *, annotation=None, errors: str = "raise", fixes=True,
              check_frames: bool = False, on_mismatch: str = "fix") -> pd.DataFrame:
    """Read SAMM (micro-movements, ``SAMM_Micro_FACS_Codes_v2.xlsx``).

    Args:
        root: the dataset root folder.
        annotation: path of the coding spreadsheet; default: the one found under ``root``.
        errors: ``"raise"`` (default) stops at the first row still invalid after the
            fixes; ``"drop"`` leaves such rows out, warning for each and with the
            count (``df.attrs["dropped"]``).
        fixes: ``True`` applies the packaged fix table (:mod:`kerasmer.data.readers.fixes`),
            ``False`` none, or a table of your own (CSV path or DataFrame).
        check_frames: also decode each clip's onset, apex and offset frames.
        on_mismatch: ``"fix"`` (default), ``"clip"`` or ``"drop"``: a clip whose onset..offset
            disagrees with the frames in its folder is corrected by the fix table or raises; is clamped
            to the frames present; or is left out (:mod:`kerasmer.data.readers._mismatch`).

    Returns:
        The schema DataFrame; ``subject`` is the 3-digit id (``"006"``), ``clip``
        the Filename (``"006_1_2"``), ``fps`` 200; extra columns
        ``objective_class`` (``"I"``..``"VII"``) and ``fixes``.

    Raises:
        AnnotationError: missing spreadsheet, header row or columns, a missing or
            empty clip folder, frames outside the folder, apex outside
            onset..offset; names the file and spreadsheet row.

    Example:
        >>> df = read_dataset("samm", "/data/SAMM")  # doctest: +SKIP
        >>> df.groupby("emotion").size()  # doctest: +SKIP
    """
    root = Path(root)
    xlsx = Path(annotation) if annotation is not None else find_file(
        root, SPREADSHEET_PATTERNS, dataset=DATASET, what="SAMM_Micro_FACS_Codes spreadsheet")
    raw = read_xlsx_raw(xlsx, dataset=DATASET)
    header = find_header_row(raw, ["Subject", "Filename"], dataset=DATASET, file=xlsx)
    table = read_xlsx(xlsx, dataset=DATASET, header=header)
    cols = pick_columns(table, ALIASES, dataset=DATASET, file=xlsx, optional=("objective", "action_units"),
                        row=header + 1)

    def subject_of(rec):
        return subject_id(rec[cols["subject"]], width=3)

    def clip_of(rec, onset):
        return cell_text(rec[cols["clip"]])

    def locate(rec, row, subject, clip):
        base = _frame_root(root, subject)
        folder = find_child(base / subject, clip) if base is not None else None
        if folder is None or not folder.is_dir():
            raise AnnotationError(DATASET, xlsx, f"clip folder {subject}/{clip} not found under {root} "
                                  f"(looked in {', '.join(t or '.' for t in FRAME_TREES)})", row=row)
        return folder

    def extra_of(rec):
        return {"objective_class": objective_class(rec[cols["objective"]]) if cols["objective"] else ""}

    return build_rows(table, dataset=DATASET, file=xlsx, cols=cols, fps=FPS, locate=locate,
                      subject_of=subject_of, clip_of=clip_of, extra_of=extra_of, errors=errors,
                      fixes=fixes, check_frames=check_frames, on_mismatch=on_mismatch,
                      ident=lambda rec: (subject_of(rec), clip_of(rec, None)))
