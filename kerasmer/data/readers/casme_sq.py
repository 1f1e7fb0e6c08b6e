"""CAS(ME)² reader: ``read_dataset("casme_sq", root)``.

Reference: F. Qu et al., "CAS(ME)²: A Database for Spontaneous Macro-Expression
and Micro-Expression Spotting and Recognition", IEEE Trans. Affective
Computing 9(4), 2018.  22 subjects, long videos at 30 fps with 57
micro-expressions and 300 macro-expressions.

Expected layout under ``root``::

    CAS(ME)^2code_final.xlsx                  # any *code_final*.xlsx, any subfolder
    rawpic/s15/15_0101disgustingteeth/img1.jpg  # one folder per long video

``code_final.xlsx`` has three sheets and **no header row**:

* the first (``CASFEcode_final``): one expression per row: subject number
  (``1``..``22``), expression name (``disgust1_1``: video name ``disgust1`` +
  ``_`` + counter), onset, apex, offset, AUs, emotion (positive, negative,
  surprise, others), expression type (``micro-expression`` /
  ``macro-expression``), self-reported emotion;
* ``naming rule1``: subject folder (``s15``) ↔ subject number;
* ``naming rule2``: video code (``0101``) ↔ video name (``disgust1``).

The clip's frames are ``rawpic/s<NN>/<NN>_<code>*/img<N>.jpg`` for onset..offset.
An offset cell of ``0`` means "not annotated"; the packaged fix table sets it to
the apex (see :mod:`kerasmer.data.readers.fixes`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from kerasmer.data.readers import register_reader
from kerasmer.data.readers._common import (
    AnnotationError, cell_text, find_dir, find_file, is_missing, read_xlsx_raw,
)
from kerasmer.data.readers._sheet_reader import build_rows

DATASET = "casme_sq"
logger = logging.getLogger("kerasmer.data")
FPS = 30.0
SPREADSHEET_PATTERNS = ("CAS(ME)^2code_final.xlsx", "*code_final*.xls*")
MAIN_COLUMNS = ("subject_no", "name", "onset", "apex", "offset", "action_units", "emotion", "type", "self_report")
TYPES = {"micro": "micro-expression", "macro": "macro-expression"}


def _sheet(names: list, wanted: str, position: int, xlsx) -> str:
    key = wanted.replace(" ", "").casefold()
    for name in names:
        if name.replace(" ", "").casefold() == key:
            return name
    if len(names) > position:  # renamed sheets: fall back to the official order
        return names[position]
    raise AnnotationError(DATASET, xlsx, f"no sheet {wanted!r}; sheets present: {names}")


def _digits(value) -> str:
    found = re.findall(r"\d+", cell_text(value))
    return found[-1] if found else ""


def _name_maps(xlsx: Path) -> tuple[dict, dict]:
    try:
        with pd.ExcelFile(xlsx, engine="openpyxl" if xlsx.suffix.lower() == ".xlsx" else None) as book:
            names = book.sheet_names
    except Exception as err:  # same failure as read_xlsx_raw reports, named
        raise AnnotationError(DATASET, xlsx, f"cannot read spreadsheet ({type(err).__name__}: {err})") from err
    rule1 = read_xlsx_raw(xlsx, dataset=DATASET, sheet_name=_sheet(names, "naming rule1", 1, xlsx))
    rule2 = read_xlsx_raw(xlsx, dataset=DATASET, sheet_name=_sheet(names, "naming rule2", 2, xlsx))
    subjects, videos = {}, {}
    for row, rec in rule1.iterrows():  # folder number (col 0, or "s15" in col 1) <-> subject number (col 2)
        if rec.isna().all():
            continue
        if rec.size < 3 or not _digits(rec.iloc[2]) or not (_digits(rec.iloc[0]) or _digits(rec.iloc[1])):
            raise AnnotationError(DATASET, xlsx, "sheet 'naming rule1': expected folder number, folder name "
                                  f"and subject number, got {list(rec)}", row=row)
        subjects[int(_digits(rec.iloc[2]))] = _digits(rec.iloc[0]) or _digits(rec.iloc[1])
    for row, rec in rule2.iterrows():  # video code (col 0) <-> video name (col 1)
        if rec.isna().all():
            continue
        if rec.size < 2 or not _digits(rec.iloc[0]) or is_missing(rec.iloc[1]):
            raise AnnotationError(DATASET, xlsx, "sheet 'naming rule2': expected video code and video name, "
                                  f"got {list(rec)}", row=row)
        videos[cell_text(rec.iloc[1]).casefold()] = _digits(rec.iloc[0]).zfill(4)
    return subjects, videos


def _main_table(xlsx: Path, expression: str) -> pd.DataFrame:
    """The first sheet's rows of the wanted expression type, with the columns named; checks its shape."""
    table = read_xlsx_raw(xlsx, dataset=DATASET, sheet_name=0)
    table = table.dropna(how="all")
    if table.shape[1] < len(MAIN_COLUMNS):
        raise AnnotationError(DATASET, xlsx, f"first sheet has {table.shape[1]} columns; expected "
                              f"{len(MAIN_COLUMNS)} (no header): {', '.join(MAIN_COLUMNS)}")
    table = table.iloc[:, :len(MAIN_COLUMNS)]
    table.columns = list(MAIN_COLUMNS)
    if len(table) and not _digits(table.iloc[0]["onset"]):
        raise AnnotationError(DATASET, xlsx, f"unexpected header row {list(table.iloc[0])}: the official "
                              "file has none; remove it", row=int(table.index[0]))
    types = table["type"].map(lambda v: cell_text(v).casefold())
    bad = ~types.isin(TYPES.values())
    if bad.any():
        row = int(table.index[bad.to_numpy()][0])
        raise AnnotationError(DATASET, xlsx, f"unexpected expression type {table.loc[row, 'type']!r}; "
                              f"expected {' or '.join(TYPES.values())}", row=row)
    if expression != "all":
        keep = (types == TYPES[expression]).to_numpy()
        logger.info("[%s] %s: reading %d %s rows; %d other-type rows not read (expression=%r)", DATASET,
                    xlsx.name, int(keep.sum()), TYPES[expression], int((~keep).sum()), expression)
        table = table[keep]
    return table


@register_reader(DATASET)
def read_casme_sq(root, *, expression: str = "micro", annotation=None, errors: str = "raise", fixes=True,
                  check_frames: bool = False, on_mismatch: str = "fix") -> pd.DataFrame:
    """Read CAS(ME)² expressions from ``code_final.xlsx`` and ``rawpic/``.

    Args:
        root: the dataset root folder.
        expression: ``"micro"`` (default), ``"macro"`` or ``"all"``.
        annotation: path of ``code_final.xlsx``; default: found under ``root``.
        errors: ``"raise"`` (default) or ``"drop"`` rows still invalid after the fixes.
        fixes: ``True`` (packaged table), ``False``, or your own table.
        check_frames: also decode each clip's onset, apex and offset frames.
        on_mismatch: ``"fix"`` (default), ``"clip"`` or ``"drop"``: a clip whose onset..offset
            disagrees with the frames in its folder is corrected by the fix table or raises; is clamped
            to the frames present; or is left out (:mod:`kerasmer.data.readers._mismatch`).

    Returns:
        The schema DataFrame; ``subject`` is the rawpic folder (``"s15"``), ``clip``
        the expression name (``"disgust1_1"``), ``emotion`` the emotion column
        (positive/negative/surprise/others), ``frame_paths`` the onset..offset
        frames of the long video; extra columns ``video`` (the folder name),
        ``expression_type``, ``self_report``, ``fixes``.

    Raises:
        AnnotationError: unreadable spreadsheet, a main sheet with a header row or
            too few columns, a subject or video missing from the naming sheets, a
            missing video folder, onset/offset frames not in the folder, apex
            outside onset..offset; names the file and row.

    Example:
        >>> df = read_dataset("casme_sq", "/data/CASME_sq")  # doctest: +SKIP
    """
    if expression not in ("micro", "macro", "all"):
        raise ValueError(f"expression must be 'micro', 'macro' or 'all', got {expression!r}")
    root = Path(root)
    xlsx = Path(annotation) if annotation is not None else find_file(
        root, SPREADSHEET_PATTERNS, dataset=DATASET, what="code_final spreadsheet")
    table = _main_table(xlsx, expression)
    subjects, videos = _name_maps(xlsx)
    rawpic = find_dir(root, ["rawpic", "CAS(ME)^2/rawpic", "rawpic/rawpic"], dataset=DATASET, what="rawpic folder")
    found: dict = {}

    def subject_of(rec):
        number = _digits(rec["subject_no"])
        if not number or int(number) not in subjects:
            raise AnnotationError(DATASET, xlsx, f"subject {rec['subject_no']!r} not in sheet 'naming rule1'",
                                  row=rec.name)
        return f"s{subjects[int(number)]}"

    def clip_of(rec, onset):
        return cell_text(rec["name"])

    def locate(rec, row, subject, clip):
        video = clip.rsplit("_", 1)[0].casefold()
        if video not in videos:
            raise AnnotationError(DATASET, xlsx, f"video name {video!r} (from {clip!r}) not in sheet "
                                  "'naming rule2'", row=row)
        prefix = f"{subject[1:]}_{videos[video]}"
        hits = sorted(d for d in (rawpic / subject).glob(f"{prefix}*") if d.is_dir())
        if len(hits) != 1:
            what = "no folder" if not hits else f"several folders ({', '.join(h.name for h in hits)})"
            raise AnnotationError(DATASET, xlsx, f"clip {subject}/{clip}: {what} {prefix}* in {rawpic / subject}",
                                  row=row)
        found[row] = hits[0].name
        return hits[0]

    def extra_of(rec):
        return {"video": found.get(rec.name, ""), "expression_type": cell_text(rec["type"]).casefold(),
                "self_report": cell_text(rec["self_report"]).casefold()}

    def ident(rec):
        try:
            return subject_of(rec), clip_of(rec, None)
        except AnnotationError:
            return "", ""

    cols = {**{c: c for c in MAIN_COLUMNS}, "clip": "name"}
    return build_rows(table, dataset=DATASET, file=xlsx, cols=cols, fps=FPS, locate=locate,
                      subject_of=subject_of, clip_of=clip_of, extra_of=extra_of, errors=errors,
                      fixes=fixes, check_frames=check_frames, on_mismatch=on_mismatch, long_video=True, ident=ident)
