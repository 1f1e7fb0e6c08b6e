"""CASME II reader: ``read_dataset("casme2", root)``.

Reference: W.-J. Yan et al., "CASME II: An Improved Spontaneous Micro-Expression
Database and the Baseline Evaluation", PLoS ONE 9(1), 2014.  26 subjects
(``sub01``..``sub26``), 255 clips recorded at 200 fps.

Expected layout under ``root`` (as unpacked from the official archives; the
synthetic set of :func:`kerasmer.data.make_synthetic` writes the same)::

    CASME2-coding-20140508.xlsx             # any CASME2-coding-*.xlsx, any subfolder
    CASME2-RAW/sub01/EP02_01f/img46.jpg     # or CASME2_RAW_selected/...
    Cropped/sub01/EP02_01f/reg_img46.jpg    # the cropped tree (either one suffices)

The coding spreadsheet's columns are Subject (an int such as ``1``), Filename
(``EP02_01f``), OnsetFrame, ApexFrame, OffsetFrame, Action Units and Estimated
Emotion; it also has unnamed blank columns (ignored), and some ApexFrame cells
hold ``/``, read as a missing apex (``apex`` is ``<NA>``, ``apex_missing`` True).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from kerasmer.data.readers import register_reader
from kerasmer.data.readers._common import AnnotationError, cell_text, find_dir, find_file, read_xlsx, require_columns, subject_id
from kerasmer.data.readers._sheet_reader import build_rows

DATASET = "casme2"
FPS = 200.0
SPREADSHEET_PATTERNS = ("CASME2-coding-*.xlsx", "CASME2-coding*.xls*", "CASME2*coding*.xls*")
FRAME_TREES = {
    "raw": ("CASME2-RAW", "CASME2_RAW_selected", "CASME2_RAW", "CASME2-RAW/CASME2-RAW"),
    "cropped": ("Cropped", "CASME2_Cropped", "Cropped-updated/Cropped"),
}
COLUMNS = {  # schema field -> official column name
    "subject": "Subject", "clip": "Filename", "onset": "OnsetFrame", "apex": "ApexFrame",
    "offset": "OffsetFrame", "action_units": "Action Units", "emotion": "Estimated Emotion",
}


def _canonical_columns(table: pd.DataFrame) -> pd.DataFrame:
    # Some copies of the file differ in case/spacing ("Estimated emotion",
    # "ActionUnits"); match those to the official names rather than fail.
    wanted = {c.lower().replace(" ", ""): c for c in COLUMNS.values()}
    rename = {c: wanted[c.lower().replace(" ", "")] for c in table.columns
              if c.lower().replace(" ", "") in wanted and c not in COLUMNS.values()}
    return table.rename(columns=rename)


def _synthetic_fps(root: Path) -> float | None:
    # make_synthetic records its arguments next to the files; its fps may differ from 200.
    marker = root / "kerasmer_synthetic.json"
    try:
        return float(json.loads(marker.read_text())["fps"]) if marker.is_file() else None
    except (ValueError, KeyError, TypeError) as err:
        raise AnnotationError(DATASET, marker, f"unreadable synthetic-set marker ({err})") from err


@register_reader(DATASET)
def read_casme2(root, *, frames: str = "auto", annotation=None, errors: str = "raise", fixes=True,
                check_frames: bool = False, on_mismatch: str = "fix", fps: float | None = None) -> pd.DataFrame:
    """Read CASME II (or the synthetic set written in its format).

    Args:
        root: the dataset root folder.
        frames: which frame tree to use: ``"raw"`` (``CASME2-RAW/``,
            ``CASME2_RAW_selected/``; ``imgN.jpg``), ``"cropped"`` (``Cropped/``;
            ``reg_imgN.jpg``) or ``"auto"`` (raw if present, else cropped).
        annotation: path of the coding spreadsheet; default: the one
            ``CASME2-coding-*.xlsx`` found under ``root``.
        errors: ``"raise"`` (default) stops at the first row still invalid after
            the fixes; ``"drop"`` (alias ``"warn"``) leaves such rows out with a
            warning naming each, and reports the count (``df.attrs["dropped"]``).
        fixes: ``True`` applies the packaged table of known annotation errors
            (``kerasmer/data/readers/annotation_fixes.csv``, each fix logged); ``False``
            applies none; or a table of your own.
        check_frames: also decode each clip's onset, apex and offset frames.
        on_mismatch: ``"fix"`` (default), ``"clip"`` or ``"drop"``: a clip whose onset..offset
            disagrees with the frames in its folder is corrected by the fix table or raises; is clamped
            to the frames present; or is left out (:mod:`kerasmer.data.readers._mismatch`).
        fps: frame rate to report; default 200 (CASME II's), or the rate recorded
            in ``kerasmer_synthetic.json`` for a set written by ``make_synthetic``.

    Returns:
        The schema DataFrame (:mod:`kerasmer.data.schema`), one row per clip in
        spreadsheet order; ``subject`` is the zero-padded id (``"01"``),
        ``frame_paths`` holds every frame of the clip folder in frame order, and
        the extra column ``fixes`` says which corrections a row received.

    Raises:
        AnnotationError: missing spreadsheet or columns, a missing clip folder,
            onset..offset outside the frames present, an unreadable frame
            number; the message names the file and the spreadsheet row.

    Example:
        >>> from kerasmer.data import make_synthetic, read_dataset
        >>> df = read_dataset("casme2", make_synthetic("/tmp/syn"))  # doctest: +SKIP
        >>> df[["subject", "clip", "onset", "apex", "offset", "emotion"]].head()  # doctest: +SKIP
    """
    root = Path(root)
    if frames == "auto":
        candidates = FRAME_TREES["raw"] + FRAME_TREES["cropped"]
    elif frames in FRAME_TREES:
        candidates = FRAME_TREES[frames]
    else:
        raise ValueError(f"frames must be 'auto', 'raw' or 'cropped', got {frames!r}")
    xlsx = Path(annotation) if annotation is not None else find_file(
        root, SPREADSHEET_PATTERNS, dataset=DATASET, what="coding spreadsheet")
    table = _canonical_columns(read_xlsx(xlsx, dataset=DATASET))
    require_columns(table, COLUMNS.values(), dataset=DATASET, file=xlsx)
    if fps is None:
        fps = _synthetic_fps(root) or FPS
    frame_root = find_dir(root, candidates, dataset=DATASET, what=f"{frames} frame folder")

    def subject_of(rec):
        return subject_id(rec["Subject"], width=2, strip_prefix="sub")

    def clip_of(rec, onset):
        return cell_text(rec["Filename"])

    def locate(rec, row, subject, clip):
        clip_dir = frame_root / f"sub{subject}" / clip
        if not clip_dir.is_dir():
            raise AnnotationError(DATASET, xlsx, f"clip folder {clip_dir} not found", row=row)
        return clip_dir

    return build_rows(table, dataset=DATASET, file=xlsx, cols=COLUMNS, fps=fps, locate=locate,
                      subject_of=subject_of, clip_of=clip_of, errors=errors, fixes=fixes,
                      check_frames=check_frames, on_mismatch=on_mismatch,
                      ident=lambda rec: (subject_of(rec), cell_text(rec["Filename"])))
