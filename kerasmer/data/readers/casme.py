"""CASME (CASME I) reader: ``read_dataset("casme", root)``.

Reference: W.-J. Yan et al., "CASME database: A dataset of spontaneous
micro-expressions collected from neutralized faces", IEEE FG 2013.  19
subjects in two parts recorded at 60 fps: part A (``sub01``..``sub07``, Point
Grey camera, 640×480) and part B (``sub08``..``sub19``, BenQ camera, 1280×720).

Expected layout under ``root`` (as unpacked from the official archives)::

    CASME_A/Section A/Section A.xls         # part A coding file (or .xlsx)
    CASME_A/Section A/sub01/EP01_5/EP01_5-1.jpg
    CASME_B/Section B/Section B.xls         # part B coding file (or .xlsx)
    CASME_B/Section B/sub08/EP01_12/...

Each part's clip folders sit next to its coding spreadsheet.  Columns:
Subject, Filename, OnsetF, ApexF1, (ApexF2), OffsetF, Action Units, Emotion
(other spellings such as ``Onset Frame`` are accepted).  The official coding
files are legacy ``.xls``: reading them needs the ``xlrd`` package; without
it, convert them to ``.xlsx`` (the error message says how).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from kerasmer.data.readers import register_reader
from kerasmer.data.readers._common import AnnotationError, cell_text, find_file, read_xlsx, subject_id
from kerasmer.data.readers._sheet_reader import build_rows, find_child, pick_columns

DATASET = "casme"
FPS = 60.0
PARTS = {"A": ("Section A.xlsx", "Section A.xls", "*Section*A*.xls*"),
         "B": ("Section B.xlsx", "Section B.xls", "*Section*B*.xls*")}
ALIASES = {
    "subject": ("Subject",), "clip": ("Filename",),
    "onset": ("OnsetF", "Onset Frame", "Onset"), "apex": ("ApexF1", "ApexF", "Apex Frame", "Apex"),
    "offset": ("OffsetF", "Offset Frame", "Offset"),
    "action_units": ("Action Units", "Action Unit", "AU", "AUs"), "emotion": ("Emotion", "Estimated Emotion"),
}
XLS_HELP = ("reading the legacy .xls format needs the 'xlrd' package, which is not installed. "
            "Either `pip install xlrd`, or convert the file to .xlsx next to it (same name), e.g. "
            "`libreoffice --headless --convert-to xlsx --outdir <folder> '<file>.xls'` or open it "
            "in Excel/LibreOffice and 'Save as' .xlsx; the .xlsx is then used automatically")


def _have_xlrd() -> bool:
    return importlib.util.find_spec("xlrd") is not None


def _spreadsheet(root: Path, part: str) -> Path:
    # Prefer an .xlsx conversion sitting next to the official .xls.
    xls = find_file(root, PARTS[part], dataset=DATASET, what=f"part {part} coding spreadsheet")
    if xls.suffix.lower() == ".xls":
        converted = xls.with_suffix(".xlsx")
        if converted.is_file():
            return converted
        if not _have_xlrd():
            raise AnnotationError(DATASET, xls, XLS_HELP)
    return xls


@register_reader(DATASET)
def read_casme(root, *, parts=("A", "B"), annotation=None, errors: str = "raise", fixes=True,
               check_frames: bool = False, on_mismatch: str = "fix") -> pd.DataFrame:
    """Read CASME I, parts A and B.

    Args:
        root: the dataset root folder (holding ``CASME_A/`` and ``CASME_B/``).
        parts: which parts to read, ``("A", "B")`` by default.
        annotation: ``{"A": path, "B": path}`` to give the coding spreadsheets
            explicitly (their clip folders must sit next to them).
        errors: ``"raise"`` (default) or ``"drop"`` rows still invalid after the
            fixes (warned, counted in ``df.attrs["dropped"]``).
        fixes: ``True`` (packaged fix table), ``False``, or your own table.
        check_frames: also decode each clip's onset, apex and offset frames.
        on_mismatch: ``"fix"`` (default), ``"clip"`` or ``"drop"``: a clip whose onset..offset
            disagrees with the frames in its folder is corrected by the fix table or raises; is clamped
            to the frames present; or is left out (:mod:`kerasmer.data.readers._mismatch`).

    Returns:
        The schema DataFrame; ``subject`` is ``"01"``..``"19"``, ``fps`` 60; extra
        columns ``part`` (``"A"``/``"B"``) and ``fixes``.

    Raises:
        AnnotationError: missing spreadsheet (or an ``.xls`` without ``xlrd``, with
            instructions to convert it), missing columns, missing clip folders,
            frames outside the folder; names the file and row.

    Example:
        >>> df = read_dataset("casme", "/data/CASME")  # doctest: +SKIP
    """
    root = Path(root)
    parts = [str(p).upper() for p in ([parts] if isinstance(parts, str) else parts)]
    if not parts or any(p not in PARTS for p in parts):
        raise ValueError(f"parts must be a subset of ('A', 'B'), got {parts!r}")
    frames = []
    for part in parts:
        xlsx = Path(annotation[part]) if annotation else _spreadsheet(root, part)
        if xlsx.suffix.lower() == ".xls" and not _have_xlrd():
            raise AnnotationError(DATASET, xlsx, XLS_HELP)
        table = read_xlsx(xlsx, dataset=DATASET)
        cols = pick_columns(table, ALIASES, dataset=DATASET, file=xlsx, optional=("action_units",))
        folder = xlsx.parent

        def subject_of(rec, _cols=cols):
            return subject_id(rec[_cols["subject"]], width=2, strip_prefix="sub")

        def clip_of(rec, onset, _cols=cols):
            return cell_text(rec[_cols["clip"]])

        def locate(rec, row, subject, clip, _folder=folder, _xlsx=xlsx):
            sub_dir = find_child(_folder, f"sub{subject}")
            clip_dir = find_child(sub_dir, clip) if sub_dir is not None else None
            if clip_dir is None or not clip_dir.is_dir():
                raise AnnotationError(DATASET, _xlsx, f"clip folder sub{subject}/{clip} not found in {_folder}",
                                      row=row)
            return clip_dir

        frames.append(build_rows(
            table, dataset=DATASET, file=xlsx, cols=cols, fps=FPS, locate=locate, subject_of=subject_of,
            clip_of=clip_of, extra_of=lambda rec, _p=part: {"part": _p}, errors=errors, fixes=fixes,
            check_frames=check_frames, on_mismatch=on_mismatch, ident=lambda rec, _s=subject_of, _c=clip_of: (_s(rec), _c(rec, None))))
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df.attrs = {"dropped": sum((f.attrs.get("dropped", []) for f in frames), []),
                "fixes_applied": sum((f.attrs.get("fixes_applied", []) for f in frames), []),
                "mismatch": {"policy": on_mismatch,
                             **{k: sum((f.attrs["mismatch"][k] for f in frames), []) for k in ("changed", "dropped")}}}
    return df
