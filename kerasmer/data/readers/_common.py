"""Helpers shared by every dataset reader: frame listing, spreadsheets, validation.

A reader typically does::

    xlsx = find_file(root, ["CASME2-coding-*.xlsx"], dataset="casme2", what="coding spreadsheet")
    table = read_xlsx(xlsx, dataset="casme2")
    require_columns(table, ["Subject", "Filename"], dataset="casme2", file=xlsx)
    rows = []
    for row_no, rec in table.iterrows():        # index = 1-based spreadsheet row
        try:
            onset = parse_frame(rec["OnsetFrame"], dataset="casme2", file=xlsx, row=row_no,
                                column="OnsetFrame", allow_missing=False)
            ...
            paths, numbers = list_frames(clip_dir, dataset="casme2")
            rows.append(make_row(dataset="casme2", ..., file=xlsx, row=row_no))
        except AnnotationError as err:
            handle_row_error(err, errors)       # "raise" (default) or "warn"
    return to_frame(rows, dataset="casme2", file=xlsx)

Every helper raises :class:`~kerasmer.data.schema.AnnotationError` naming the
dataset, the file and (where there is one) the row, so a user with a damaged
copy of a dataset is told exactly what to fix.
"""

from __future__ import annotations

import glob
import math
import os
import re
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from kerasmer.data.schema import COLUMNS, EXTRA_COLUMNS, AnnotationError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# Cell values that mean "not annotated" in the datasets' spreadsheets (CASME II
# writes "/" for an unknown apex; others leave the cell blank or write "-").
MISSING_MARKERS = frozenset({"", "/", "-", "--", "n/a", "na", "nan", "none", "null"})
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


# ----------------------------------------------------------------- frames


def frame_number(path) -> int | None:
    """The frame number in an image file name: the last run of digits in its stem.

    Handles every naming scheme of the supported datasets: ``img46.jpg`` (CASME II
    raw), ``reg_img46.jpg`` (CASME II cropped), ``006_05562.jpg`` (SAMM, subject
    prefix ignored), ``image069213.bmp`` (SMIC), ``12.jpg``.

    Args:
        path: file name or path.

    Returns:
        The frame number, or ``None`` if the stem holds no digit.

    Example:
        >>> frame_number("sub01/EP02_01f/reg_img46.jpg"), frame_number("006_05562.jpg")
        (46, 5562)
    """
    m = _LAST_NUMBER.search(Path(path).stem)
    return int(m.group(1)) if m else None


def list_frames(folder, *, dataset: str, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                prefix: str | None = None) -> tuple[list[str], list[int]]:
    """List a clip folder's image frames sorted numerically by frame number.

    Lexical order puts ``img100.jpg`` before ``img46.jpg``; this sorts by the number
    parsed with :func:`frame_number`.

    Args:
        folder: the clip's folder.
        dataset: dataset name, for error messages.
        extensions: accepted (lower-case) file extensions.
        prefix: if given, only names starting with it (e.g. ``"reg_img"``).

    Returns:
        ``(paths, numbers)``: absolute paths as strings and their frame numbers,
        both in ascending frame order.

    Raises:
        AnnotationError: the folder is missing, holds no frame, holds an image whose
            name has no number, or two images with the same frame number.

    Example:
        >>> paths, numbers = list_frames("CASME2-RAW/sub01/EP02_01f", dataset="casme2")  # doctest: +SKIP
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise AnnotationError(dataset, folder, "clip folder not found")
    exts = tuple(e.lower() for e in extensions)
    found: dict[int, str] = {}
    for name in os.listdir(folder):
        if not name.lower().endswith(exts) or (prefix is not None and not name.startswith(prefix)):
            continue
        num = frame_number(name)
        if num is None:
            raise AnnotationError(dataset, folder / name, "image file name holds no frame number")
        if num in found:
            raise AnnotationError(dataset, folder, f"two images with frame number {num}: "
                                  f"{Path(found[num]).name} and {name}")
        found[num] = str((folder / name).resolve())
    if not found:
        raise AnnotationError(dataset, folder, f"no image frames ({', '.join(exts)}) in clip folder")
    numbers = sorted(found)
    return [found[n] for n in numbers], numbers


def find_dir(root, candidates: Sequence[str], *, dataset: str, what: str) -> Path:
    """The first of ``candidates`` (relative to ``root``) that is a folder.

    Args:
        root: dataset root.
        candidates: relative folder names in order of preference.
        dataset: dataset name, for error messages.
        what: what the folder is, for the error message ("frame folder").

    Returns:
        The folder's path.

    Raises:
        AnnotationError: none of them exists; lists what was looked for.

    Example:
        >>> find_dir("/data/CASME2", ["CASME2-RAW", "Cropped"], dataset="casme2", what="frames")  # doctest: +SKIP
    """
    root = Path(root)
    for cand in candidates:
        if (root / cand).is_dir():
            return root / cand
    raise AnnotationError(dataset, root, f"no {what} found; looked for {', '.join(map(repr, candidates))}")


def find_file(root, patterns: Sequence[str], *, dataset: str, what: str, recursive: bool = True) -> Path:
    """Find exactly one file matching one of the glob ``patterns`` under ``root``.

    Patterns are tried in order; the first one matching anything wins.  With
    ``recursive`` the files may sit in any subfolder (archives unpack differently).

    Args:
        root: dataset root (a file path is returned as is if it exists).
        patterns: glob patterns such as ``"CASME2-coding-*.xlsx"``.
        dataset: dataset name, for error messages.
        what: what the file is ("coding spreadsheet").
        recursive: also search subfolders.

    Returns:
        The file's path.

    Raises:
        AnnotationError: no file matches, or several match one pattern (naming
            them, so the user can pass the one meant explicitly).

    Example:
        >>> find_file("/data/CASME2", ["CASME2-coding-*.xlsx"], dataset="casme2", what="coding")  # doctest: +SKIP
    """
    root = Path(root)
    if root.is_file():
        return root
    if not root.is_dir():
        raise AnnotationError(dataset, root, "dataset root folder not found")
    for pat in patterns:
        hits = sorted(set(glob.glob(str(root / pat))) |
                      (set(glob.glob(str(root / "**" / pat), recursive=True)) if recursive else set()))
        # Office leaves "~$name.xlsx" lock files next to open spreadsheets.
        hits = [h for h in hits if not Path(h).name.startswith("~$")]
        if len(hits) == 1:
            return Path(hits[0])
        if len(hits) > 1:
            raise AnnotationError(dataset, root, f"several files match {pat!r} for the {what}: "
                                  f"{', '.join(hits)}; pass the one to use explicitly")
    raise AnnotationError(dataset, root, f"{what} not found; looked for {', '.join(map(repr, patterns))}")


# ----------------------------------------------------------------- spreadsheets


def read_xlsx(path, *, dataset: str, sheet_name=0, header: int = 0, dtype=object) -> pd.DataFrame:
    """Read one sheet of an annotation spreadsheet (.xlsx via openpyxl, or .xls/.csv).

    Column names are stripped of surrounding whitespace; columns that are unnamed
    *and* entirely blank (the official CASME II file has some) are dropped, as are
    entirely blank rows.  The index is the 1-based spreadsheet row number of each
    record, so ``AnnotationError(..., row=index)`` points at the row the user sees.
    Cells are read as objects (``dtype=object``), so ``"/"`` stays ``"/"`` and
    numbers stay numbers: parse them with :func:`parse_frame`.

    Args:
        path: the spreadsheet.
        dataset: dataset name, for error messages.
        sheet_name: sheet index or name.
        header: 0-based row index of the header row.
        dtype: passed to pandas.

    Returns:
        The table, indexed by spreadsheet row number.

    Raises:
        AnnotationError: the file is missing or cannot be read as a spreadsheet.

    Example:
        >>> table = read_xlsx("CASME2-coding-20140508.xlsx", dataset="casme2")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(dataset, path, "annotation spreadsheet not found")
    try:
        if path.suffix.lower() == ".csv":
            table = pd.read_csv(path, header=header, dtype=dtype)
        else:
            engine = "openpyxl" if path.suffix.lower() in (".xlsx", ".xlsm") else None
            table = pd.read_excel(path, sheet_name=sheet_name, header=header, dtype=dtype, engine=engine)
    except Exception as err:  # openpyxl/xlrd raise many types for a damaged file
        raise AnnotationError(dataset, path, f"cannot read spreadsheet ({type(err).__name__}: {err})") from err
    table.columns = [str(c).strip() for c in table.columns]
    blank = table.isna() | table.apply(lambda col: col.map(lambda v: isinstance(v, str) and not v.strip()))
    unnamed_blank = [c for c in table.columns if (c.startswith("Unnamed:") or not c) and blank[c].all()]
    table = table.drop(columns=unnamed_blank)
    keep = ~blank.drop(columns=unnamed_blank).all(axis=1)
    # header row is spreadsheet row header+1; first record is header+2.
    table.index = np.arange(len(table)) + header + 2
    return table[keep.to_numpy()]


def read_xlsx_raw(path, *, dataset: str, sheet_name=0) -> pd.DataFrame:
    """Read one sheet with no header row: every cell as an object, nothing dropped.

    For spreadsheets whose header is not on the first row (SAMM has a notes
    block above it; use :func:`find_header_row`) or that have no header at all
    (CAS(ME)² ``code_final.xlsx``).  The index is the 1-based spreadsheet row.

    Args:
        path: the spreadsheet.
        dataset: dataset name, for error messages.
        sheet_name: sheet index or name.

    Returns:
        The sheet with integer column labels 0..n-1, indexed by spreadsheet row.

    Raises:
        AnnotationError: the file is missing or cannot be read (names the sheets
            present when ``sheet_name`` is not one of them).

    Example:
        >>> raw = read_xlsx_raw("code_final.xlsx", dataset="casme_sq")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(dataset, path, "annotation spreadsheet not found")
    try:
        engine = "openpyxl" if path.suffix.lower() in (".xlsx", ".xlsm") else None
        with pd.ExcelFile(path, engine=engine) as book:
            if isinstance(sheet_name, str) and sheet_name not in book.sheet_names:
                raise AnnotationError(dataset, path, f"no sheet {sheet_name!r}; sheets present: {book.sheet_names}")
            table = book.parse(sheet_name=sheet_name, header=None, dtype=object)
    except AnnotationError:
        raise
    except Exception as err:  # openpyxl/xlrd raise many types for a damaged file
        raise AnnotationError(dataset, path, f"cannot read spreadsheet ({type(err).__name__}: {err})") from err
    # pandas skips no rows with header=None, so position i is spreadsheet row i+1.
    table.index = np.arange(len(table)) + 1
    table.columns = range(table.shape[1])
    return table


def find_header_row(raw: pd.DataFrame, required: Sequence[str], *, dataset: str, file,
                    max_rows: int = 60) -> int:
    """Find the header row of a sheet read by :func:`read_xlsx_raw`.

    The header is the first row whose stripped, case-folded cells include every
    name in ``required``, so a notes block of any length above it is skipped.

    Args:
        raw: the sheet from :func:`read_xlsx_raw`.
        required: column names that the header row must hold.
        dataset, file: for error messages.
        max_rows: how many rows to search.

    Returns:
        The 0-based row index to pass as ``header=`` to :func:`read_xlsx`.

    Raises:
        AnnotationError: no such row in the first ``max_rows`` rows.

    Example:
        >>> raw = pd.DataFrame([["notes", None], ["Subject", "Filename"], [6, "006_1_2"]], index=[1, 2, 3])
        >>> find_header_row(raw, ["Subject", "Filename"], dataset="samm", file="s.xlsx")
        1
    """
    want = {str(r).strip().casefold() for r in required}
    for pos, (_, rec) in enumerate(raw.head(max_rows).iterrows()):
        cells = {str(v).strip().casefold() for v in rec if not is_missing(v)}
        if want <= cells:
            return pos
    raise AnnotationError(dataset, file, f"no header row holding {list(required)} in the first {max_rows} rows")


def require_columns(table: pd.DataFrame, required: Iterable[str], *, dataset: str, file) -> None:
    """Check that ``table`` has every column in ``required``.

    Args:
        table: the annotation table.
        required: column names.
        dataset: dataset name, for error messages.
        file: the spreadsheet, for error messages.

    Raises:
        AnnotationError: naming the missing columns and the columns present.

    Example:
        >>> require_columns(pd.DataFrame(columns=["Subject"]), ["Subject"], dataset="x", file="a.xlsx")
    """
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise AnnotationError(dataset, file, f"missing column(s) {missing}; "
                              f"columns present: {list(table.columns)}")


def is_missing(value) -> bool:
    """True for an empty cell: ``None``, NaN/NA, or a marker such as ``"/"`` or ``""``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_MARKERS


def parse_frame(value, *, dataset: str, file, row, column: str, allow_missing: bool = True) -> int | None:
    """Parse a frame-number cell.

    Accepts ints, integral floats (``46.0``, as Excel stores numbers) and digit
    strings (``" 46 "``).  ``"/"``, blank and NaN mean missing.

    Args:
        value: the cell.
        dataset, file, row, column: for error messages.
        allow_missing: return ``None`` for a missing cell instead of raising.

    Returns:
        The frame number, or ``None`` if missing and allowed.

    Raises:
        AnnotationError: garbage (``"abc"``, ``46.5``, negative), or missing when
            not allowed; names the file, row and column.

    Example:
        >>> parse_frame("/", dataset="casme2", file="c.xlsx", row=3, column="ApexFrame") is None
        True
    """
    if is_missing(value):
        if allow_missing:
            return None
        raise AnnotationError(dataset, file, f"column {column!r} is empty; a frame number is required", row=row)
    num = None
    if isinstance(value, (bool, np.bool_)):
        num = None
    elif isinstance(value, (int, np.integer)):
        num = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        num = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.0*)?\s*", value):
        num = int(float(value))
    if num is None or num < 0:
        raise AnnotationError(dataset, file, f"column {column!r} holds {value!r}, not a frame number", row=row)
    return num


def subject_id(value, *, width: int | None = None, strip_prefix: str = "") -> str:
    """Normalize a subject cell to a string id.

    Args:
        value: the cell (``1``, ``1.0``, ``"sub01"``, ``"006"``, ``"s3"``).
        width: zero-pad numeric ids to this width (CASME II: 2 -> ``"01"``).
        strip_prefix: a prefix removed first, case-insensitively (``"sub"``).

    Returns:
        The id as a string.

    Example:
        >>> subject_id(1, width=2), subject_id("sub07", width=2, strip_prefix="sub"), subject_id("s3")
        ('01', '07', 's3')
    """
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    if strip_prefix and text.lower().startswith(strip_prefix.lower()):
        text = text[len(strip_prefix):]
    if width is not None and text.isdigit():
        text = text.zfill(width)
    return text


def cell_text(value) -> str:
    """A text cell as a stripped string; ``""`` for blank/NaN (not for ``"/"``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return str(value).strip()


# ----------------------------------------------------------------- rows


def make_row(*, dataset: str, subject: str, clip: str, emotion: str, onset: int, apex: int | None,
             offset: int, action_units: str, frame_paths: Sequence[str], frame_numbers: Sequence[int],
             fps: float, file, row, require_frames: bool = True, **extra) -> dict:
    """Validate one clip and return it as a schema row (a dict).

    Checks onset ≤ apex ≤ offset (apex may be ``None``) and that onset..offset lies
    within the frames present (``frame_numbers[0] ≤ onset`` and
    ``offset ≤ frame_numbers[-1]``).

    Args:
        dataset, subject, clip, emotion, onset, apex, offset, action_units,
            frame_paths, frame_numbers, fps: the schema's fields (see
            :mod:`kerasmer.data.schema`); emotion is lower-cased.
        file: the annotation file; with ``row`` fills ``source`` and errors.
        row: the annotation row (1-based spreadsheet row).
        require_frames: check onset..offset against the frames (turn off for
            datasets that annotate only a long video's span).
        **extra: further dataset-specific columns, passed through.

    Returns:
        A dict with every column of ``COLUMNS + EXTRA_COLUMNS`` plus ``extra``.

    Raises:
        AnnotationError: inconsistent frames; names the file and row.

    Example:
        >>> r = make_row(dataset="x", subject="01", clip="c", emotion="Happiness", onset=2, apex=3,
        ...              offset=4, action_units="12", frame_paths=["a", "b", "c"],
        ...              frame_numbers=[2, 3, 4], fps=200, file="x.xlsx", row=2)
        >>> r["emotion"], r["apex_missing"]
        ('happiness', False)
    """
    def fail(msg):
        raise AnnotationError(dataset, file, f"clip {subject}/{clip}: {msg}", row=row)

    if onset > offset:
        fail(f"onset {onset} is after offset {offset}")
    if apex is not None and not onset <= apex <= offset:
        fail(f"apex {apex} is not within onset..offset {onset}..{offset}")
    frame_numbers = [int(n) for n in frame_numbers]
    if len(frame_paths) != len(frame_numbers):
        raise ValueError("make_row: frame_paths and frame_numbers differ in length")
    if require_frames:
        if not frame_numbers:
            fail("no frames")
        if onset < frame_numbers[0] or offset > frame_numbers[-1]:
            folder = Path(frame_paths[0]).parent
            fail(f"onset..offset {onset}..{offset} is outside the frames present "
                 f"{frame_numbers[0]}..{frame_numbers[-1]} in {folder}")
    out = {
        "dataset": dataset, "subject": str(subject), "clip": str(clip),
        "emotion": str(emotion).strip().lower(), "onset": int(onset),
        "apex": None if apex is None else int(apex), "offset": int(offset),
        "action_units": "" if action_units is None else str(action_units).strip(),
        "frame_paths": [str(p) for p in frame_paths], "frame_numbers": frame_numbers,
        "fps": float(fps), "apex_missing": apex is None, "source": f"{file}:row {row}",
    }
    out.update(extra)
    return out


def handle_row_error(err: AnnotationError, errors: str) -> None:
    """Apply a reader's ``errors`` option to a bad row.

    Args:
        err: the row's error.
        errors: ``"raise"`` re-raises; ``"warn"`` emits a ``UserWarning`` with the
            full message (the row is then left out by the caller, visibly).

    Example:
        >>> handle_row_error(AnnotationError("x", "f.xlsx", "bad", row=3), "warn")  # doctest: +SKIP
    """
    if errors == "raise":
        raise err
    if errors == "warn":
        warnings.warn(f"skipping row: {err}", UserWarning, stacklevel=3)
        return
    raise ValueError(f"errors must be 'raise' or 'warn', got {errors!r}")


def to_frame(rows: list[dict], *, dataset: str, file) -> pd.DataFrame:
    """Assemble validated rows into the schema DataFrame with its dtypes.

    Args:
        rows: dicts from :func:`make_row`.
        dataset: dataset name, for error messages.
        file: the annotation file, for error messages.

    Returns:
        DataFrame with ``COLUMNS + EXTRA_COLUMNS`` first (``apex`` as ``Int64``,
        onset/offset as int64), then any extra columns, index 0..n-1.

    Raises:
        AnnotationError: no rows at all, or a duplicated (subject, clip).

    Example:
        >>> df = to_frame(rows, dataset="casme2", file="c.xlsx")  # doctest: +SKIP
    """
    if not rows:
        raise AnnotationError(dataset, file, "no usable clips found")
    df = pd.DataFrame(rows)
    dup = df.duplicated(["subject", "clip"], keep=False)
    if dup.any():
        first = df[dup].iloc[0]
        same = df[(df["clip"] == first["clip"]) & (df["subject"] == first["subject"])]  # df.clip is a method
        raise AnnotationError(dataset, file, f"clip {first['subject']}/{first['clip']} is annotated twice "
                              f"({', '.join(same['source'])})")
    df["apex"] = df["apex"].astype("Int64")
    df["onset"] = df["onset"].astype("int64")
    df["offset"] = df["offset"].astype("int64")
    df["apex_missing"] = df["apex_missing"].astype(bool)
    order = list(COLUMNS + EXTRA_COLUMNS)
    return df[order + [c for c in df.columns if c not in order]].reset_index(drop=True)


__all__ = [
    "AnnotationError",
    "IMAGE_EXTENSIONS", "MISSING_MARKERS", "cell_text", "find_dir", "find_file", "frame_number",
    "find_header_row", "handle_row_error", "is_missing", "list_frames", "make_row", "parse_frame", "read_xlsx",
    "read_xlsx_raw", "require_columns", "subject_id", "to_frame",
]
