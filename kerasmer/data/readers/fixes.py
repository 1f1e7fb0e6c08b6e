"""Known errors in the official MER annotations, and their documented corrections.

The official spreadsheets contain a few known errors: apex frames that are not
annotated (CASME II writes ``/``, SAMM ``-1``), offsets before the apex, onsets
mistyped.  Rather than patch them silently in each reader, every correction is
one row of a table kept in the package (``kerasmer/data/readers/annotation_fixes.csv``),
with the reason and the source, and each correction applied is logged on the
``kerasmer.data`` logger (level INFO) and recorded in the returned DataFrame
(column ``fixes`` and ``df.attrs["fixes_applied"]``).

Table columns:

======== ====================================================================
dataset  reader name (``"samm"``)
file     glob pattern of the annotation file's name (``SAMM*Micro_FACS*.xls*``)
row      empty for an entry keyed by ``subject`` and ``clip`` (the rule);
         a 1-based spreadsheet row only where the clip is not known, and then
         only with ``is:`` guard or the exact file name (no glob), marked
         ``[row-keyed]`` in ``reason``; ``*`` for every row
subject  subject id as the reader returns it (with ``clip``), or empty
clip     clip / video id as in the spreadsheet's file-name column, or empty
field    ``onset``, ``apex``, ``offset``, or ``frames`` (the annotated
         onset..offset against the frames present in the clip's folder)
when     the guard: ``missing`` (blank, ``/``, negative), ``invalid`` (the
         row's onset <= apex <= offset order fails, or a frame cell is
         missing) or ``is:<value>`` (the cell holds exactly that value, e.g.
         ``is:/``, ``is:68``); for ``frames``: ``is:<onset>..<offset>`` as
         the spreadsheet gives them
value    the corrected frame number, or ``onset``/``apex``/``offset`` to copy
         that field of the same row; for ``frames``: ``<first>..<last>``, the
         frames the folder must hold (a second guard).  The clip becomes the
         (fixed) onset..offset clamped to those frames, or, where they do not
         overlap, those frames with the apex missing
reason   why (shown in the log)
source   where the correction comes from
======== ====================================================================

A fix applies only when its key (dataset, file, subject and clip) and its guard
both match; a keyed entry whose guard does not match is logged (WARNING) and the
row is read as if there were no fix, and a fix that would leave the row invalid
(an apex outside onset..offset) is not applied either.  No fix applies by row
number alone.  All
``invalid`` fixes of one row are applied together, and only if the row is
invalid once the row's other fixes are applied.

Rows still invalid after the fixes make the reader raise (default) or, with
``errors="drop"``, are left out with a warning each and a count (see
:class:`RowErrors`).
"""

from __future__ import annotations

import fnmatch
import logging
import warnings
from pathlib import Path

import pandas as pd

from kerasmer.data.readers._common import handle_row_error, is_missing, parse_frame
from kerasmer.data.schema import AnnotationError

logger = logging.getLogger("kerasmer.data")

FIXES_FILE = Path(__file__).with_name("annotation_fixes.csv")
FIX_COLUMNS = ("dataset", "file", "row", "subject", "clip", "field", "when", "value", "reason", "source")
FIELDS = ("onset", "apex", "offset")
FRAMES = "frames"  # the onset..offset-versus-folder entries, applied once the folder is listed


def load_fixes(source=None) -> pd.DataFrame:
    """Load and check a table of annotation fixes.

    Args:
        source: ``None`` for the table shipped in the package, a CSV path, or a
            DataFrame with the columns listed in this module's docstring.

    Returns:
        The table, all cells as stripped strings.

    Raises:
        ValueError: a missing column or a malformed entry (names the entry).

    Example:
        >>> fixes = load_fixes()
        >>> sorted(set(fixes["dataset"]))[:2]
        ['casme2', 'casme3']
    """
    if source is None:
        source = FIXES_FILE
    if isinstance(source, pd.DataFrame):
        table, name = source.copy(), "(DataFrame)"
    else:
        table, name = pd.read_csv(source, dtype=str, keep_default_na=False), str(source)
    missing = [c for c in FIX_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"fix table {name}: missing column(s) {missing}")
    table = table[list(FIX_COLUMNS)].fillna("").astype(str).apply(lambda col: col.str.strip())
    for i, fix in table.iterrows():
        where = f"fix table entry {i + 1} ({fix['dataset']} row {fix['row'] or '-'} {fix['field']})"
        if fix["field"] not in FIELDS + (FRAMES,):
            raise ValueError(f"{where}: field must be one of {FIELDS + (FRAMES,)}")
        if fix["field"] == FRAMES:
            _check_frames_entry(fix, where)
            continue
        if not (fix["when"] in ("missing", "invalid") or fix["when"].startswith("is:")):
            raise ValueError(f"{where}: when must be 'missing', 'invalid' or 'is:<value>'")
        if not (fix["value"].isdigit() or fix["value"] in FIELDS):
            raise ValueError(f"{where}: value must be a frame number or one of {FIELDS}")
        if fix["row"] not in ("", "*") and not fix["row"].isdigit():
            raise ValueError(f"{where}: row must be a spreadsheet row number, '*' or empty")
        if fix["row"] == "" and not (fix["subject"] and fix["clip"]):
            raise ValueError(f"{where}: give a row, or a subject and a clip")
        if fix["row"].isdigit() and not (fix["subject"] and fix["clip"]) and not fix["when"].startswith("is:") \
                and any(ch in fix["file"] for ch in "*?["):
            # issue 11: a row number alone lands on another clip in a sorted copy or another file
            raise ValueError(f"{where}: an entry keyed by row number alone needs the exact file name or an "
                             "'is:<value>' guard; better, key it by subject and clip")
    return table.reset_index(drop=True)


def parse_range(text: str) -> tuple[int, int] | None:
    """``"66..111"`` -> ``(66, 111)``; None if the text is not such a range.

    Example:
        >>> parse_range("66..111"), parse_range("66")
        ((66, 111), None)
    """
    first, sep, last = str(text).partition("..")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        return None
    return int(first), int(last)


def _check_frames_entry(fix, where: str) -> None:
    # A frames entry is about one clip's folder: it needs the clip, both ranges, and no row key.
    if not (fix["subject"] and fix["clip"]) or fix["row"]:
        raise ValueError(f"{where}: a frames entry is keyed by subject and clip, not by row")
    if not fix["when"].startswith("is:") or parse_range(fix["when"][3:]) is None:
        raise ValueError(f"{where}: a frames entry's when must be 'is:<onset>..<offset>'")
    if parse_range(fix["value"]) is None:
        raise ValueError(f"{where}: a frames entry's value must be '<first>..<last>' (the frames present)")


def _frame_or_none(value):
    # Guards look at cells leniently: anything not a frame number is "missing".
    if is_missing(value):
        return None
    try:
        num = float(value)
    except (TypeError, ValueError):
        return None
    return int(num) if num >= 0 and num.is_integer() else None


def _row_invalid(rec, columns) -> bool:
    onset, apex, offset = (_frame_or_none(rec[columns[f]]) for f in FIELDS)
    if onset is None or offset is None or onset > offset:
        return True
    return apex is not None and not onset <= apex <= offset


def _cell_is(value, expected: str) -> bool:
    if _frame_or_none(value) is not None and expected.lstrip("-").isdigit():
        return _frame_or_none(value) == int(expected)
    try:
        if float(value) == float(expected):
            return True
    except (TypeError, ValueError):
        pass
    return str(value).strip().casefold() == expected.casefold()


def _fixes_per_row(entries: pd.DataFrame, table: pd.DataFrame, ids: dict) -> dict:
    """``{row index: [fix entries whose row / subject / clip key matches it]}``, guards not yet checked."""
    per_row: dict = {}
    for _, fix in entries.iterrows():
        if fix["row"] == "*":
            targets = list(table.index)
        elif fix["row"]:
            targets = [int(fix["row"])] if int(fix["row"]) in table.index else []
        else:
            targets = list(table.index)
        if fix["subject"] or fix["clip"]:
            targets = [i for i in targets if i in ids and ids[i] == (fix["subject"], fix["clip"])]
        for idx in targets:
            per_row.setdefault(idx, []).append(fix)
    return per_row


def _chosen_fixes(original: pd.Series, row_fixes: list, columns: dict, value_of) -> list:
    """The fixes of one row whose guard holds: ``missing``/``is:`` first, then every ``invalid`` one together
    if the row is invalid as given or once the others are applied."""
    chosen = []
    for fix in row_fixes:
        cell = original[columns[fix["field"]]]
        if fix["when"] == "missing" and _frame_or_none(cell) is None:
            chosen.append(fix)
        elif fix["when"].startswith("is:") and _cell_is(cell, fix["when"][3:]):
            chosen.append(fix)
    trial = original.copy()
    for fix in chosen:
        trial[columns[fix["field"]]] = value_of(fix)
    invalid_fixes = [f for f in row_fixes if f["when"] == "invalid"]
    if invalid_fixes and (_row_invalid(original, columns) or _row_invalid(trial, columns)):
        chosen += invalid_fixes
    return chosen


def apply_fixes(table: pd.DataFrame, *, dataset: str, file, columns: dict, ident=None,
                fixes=True) -> tuple[pd.DataFrame, list[dict]]:
    """Apply the fix table to an annotation table before its rows are parsed.

    Args:
        table: the annotation table indexed by 1-based spreadsheet row (as
            returned by ``read_xlsx``).
        dataset: reader name; only entries of this dataset are used.
        file: the annotation file; entries whose ``file`` pattern does not match
            its name are skipped.
        columns: schema field -> column of ``table`` for ``onset``, ``apex`` and
            ``offset``.
        ident: ``fn(record) -> (subject, clip)`` giving the ids the table's
            ``subject``/``clip`` columns are compared with; entries keyed by
            subject and clip are skipped if not given.
        fixes: ``True`` for the packaged table, ``False``/``None`` for none, or a
            table (path or DataFrame) as accepted by :func:`load_fixes`.

    Returns:
        ``(fixed_table, applied)``: a corrected copy of ``table``, and one dict
        per correction (``row``, ``subject``, ``clip``, ``field``, ``old``,
        ``new``, ``reason``, ``source``).  A column ``fixes`` is added to the
        copy describing the corrections of each row (``""`` if none).

    Example:
        >>> t = pd.DataFrame({"On": [10], "Ap": ["/"], "Off": [20]}, index=[2])
        >>> fx = pd.DataFrame([dict(dataset="x", file="a.xlsx", row="2", subject="", clip="", field="apex",
        ...                        when="missing", value="15", reason="r", source="s")])
        >>> fixed, applied = apply_fixes(t, dataset="x", file="a.xlsx",
        ...                              columns={"onset": "On", "apex": "Ap", "offset": "Off"}, fixes=fx)
        >>> int(fixed.loc[2, "Ap"]), applied[0]["old"]
        (15, '/')
    """
    table = table.copy()
    for field in FIELDS:  # object cells take either the original text or a fixed int
        table[columns[field]] = table[columns[field]].astype(object)
    table["fixes"] = ""
    # What the spreadsheet says, before any fix: the guard of a frames entry (see reconcile_frames).
    table["_sheet_range"] = [(_frame_or_none(r[columns["onset"]]), _frame_or_none(r[columns["offset"]]))
                             for _, r in table.iterrows()]
    table["_frame_fix"] = None
    if fixes is False or fixes is None:
        return table, []
    entries = load_fixes(None if fixes is True else fixes)
    name = Path(file).name
    entries = entries[(entries["dataset"] == dataset)
                      & entries["file"].map(lambda pat: fnmatch.fnmatch(name.casefold(), pat.casefold()))]
    if entries.empty:
        return table, []
    ids = {idx: ident(rec) for idx, rec in table.iterrows()} if ident is not None else {}
    for idx, frame_fixes in _fixes_per_row(entries[entries["field"] == FRAMES], table, ids).items():
        table.at[idx, "_frame_fix"] = dict(frame_fixes[0])  # one per clip; guarded once the folder is listed
    applied = []
    for idx, row_fixes in _fixes_per_row(entries[entries["field"] != FRAMES], table, ids).items():
        records = _fix_row(table, idx, row_fixes, columns, ids.get(idx, ("", "")), dataset=dataset, file=file)
        applied += records
        table.at[idx, "fixes"] = "; ".join(f"{r['field']} {r['old']!r}->{r['new']}" for r in records)
    return table, applied


def _fix_row(table: pd.DataFrame, idx, row_fixes: list, columns: dict, ids: tuple, *, dataset: str,
             file) -> list[dict]:
    """Apply the fixes of one row whose guards hold, in place; returns one record per correction.

    Guards that do not hold are logged and the row is left as the spreadsheet has it; so is a row
    the chosen fixes would leave invalid (the entry was written for another clip's values).
    """
    original, name = table.loc[idx].copy(), Path(file).name
    subject, clip = ids
    where = f"[{dataset}] {name} row {idx}" + (f" ({subject}/{clip})" if subject or clip else "")

    def value_of(fix, _orig=original):
        return int(fix["value"]) if fix["value"].isdigit() else _frame_or_none(_orig[columns[fix["value"]]])

    chosen = [f for f in _chosen_fixes(original, row_fixes, columns, value_of) if value_of(f) is not None]
    for fix in row_fixes:
        if fix["when"] != "invalid" and fix["row"] != "*" and not any(f is fix for f in chosen):
            logger.warning("%s: fix-table guard does not match (expected %s %s, found %r); no fix applied "
                           "to this field (source: %s)", where, fix["field"], fix["when"],
                           original[columns[fix["field"]]], fix["source"])
    trial = original.copy()
    for fix in chosen:
        trial[columns[fix["field"]]] = value_of(fix)
    if chosen and _row_invalid(trial, columns) and not _row_invalid(original, columns):
        logger.warning("%s: the fix-table entries would leave onset/apex/offset invalid; not applied", where)
        return []
    records = []
    for fix in chosen:
        col = columns[fix["field"]]
        old, new = original[col], value_of(fix)
        table.at[idx, col] = new
        records.append({"dataset": dataset, "file": str(file), "row": int(idx), "subject": subject, "clip": clip,
                        "field": fix["field"], "old": old, "new": new, "reason": fix["reason"],
                        "source": fix["source"]})
        logger.info("%s: fixed %s %r -> %s (%s; source: %s)", where, fix["field"], old, new,
                    fix["reason"], fix["source"])
    return records


class RowErrors:
    """Collects bad rows under a reader's ``errors`` option and reports the count.

    ``errors="raise"`` (default) re-raises the first bad row's
    :class:`~kerasmer.data.schema.AnnotationError`; ``errors="drop"`` (or
    ``"warn"``, the name the CASME II reader uses) leaves each bad row out with a
    ``UserWarning`` naming it, and :meth:`finish` then warns and logs how many
    rows were dropped and stores their messages in ``df.attrs["dropped"]``.

    Args:
        dataset: reader name.
        file: the annotation file or folder.
        errors: ``"raise"``, ``"drop"`` or ``"warn"``.

    Example:
        >>> errs = RowErrors("samm", "s.xlsx", "drop")
        >>> errs.handle(AnnotationError("samm", "s.xlsx", "bad", row=3))  # doctest: +SKIP
    """

    def __init__(self, dataset: str, file, errors: str = "raise"):
        if errors not in ("raise", "drop", "warn"):
            raise ValueError(f"errors must be 'raise' or 'drop', got {errors!r}")
        self.dataset, self.file, self.errors = dataset, file, errors
        self.dropped: list[str] = []

    def handle(self, err: AnnotationError) -> None:
        """Raise ``err``, or record it and warn (the row is then left out)."""
        handle_row_error(err, "raise" if self.errors == "raise" else "warn")
        self.dropped.append(str(err))

    def finish(self, df: pd.DataFrame, applied: list[dict] | None = None) -> pd.DataFrame:
        """Attach the drop count and fixes to ``df`` (``df.attrs``) and report drops."""
        df.attrs["dropped"] = list(self.dropped)
        df.attrs["fixes_applied"] = list(applied or [])
        if self.dropped:
            msg = (f"[{self.dataset}] {self.file}: dropped {len(self.dropped)} invalid row(s) "
                   f"(errors={self.errors!r}); see df.attrs['dropped']")
            logger.warning(msg)
            warnings.warn(msg, UserWarning, stacklevel=3)
        return df


def parse_frames(rec, columns: dict, *, dataset: str, file, row) -> tuple[int, int | None, int]:
    """Parse a record's onset, apex (may be missing) and offset, and reject a zero-length clip.

    A negative apex (SAMM writes ``-1``) reads as missing, like ``/``.

    Args:
        rec: the table record.
        columns: schema field -> column name for ``onset``, ``apex``, ``offset``.
        dataset, file, row: for error messages.

    Returns:
        ``(onset, apex or None, offset)``.

    Raises:
        AnnotationError: an unreadable or missing onset/offset, garbage in the
            apex cell, offset == onset (a zero-length clip), onset after offset,
            or an apex outside onset..offset.

    Example:
        >>> parse_frames({"a": 3, "b": -1, "c": 9}, {"onset": "a", "apex": "b", "offset": "c"},
        ...              dataset="samm", file="s.xlsx", row=15)
        (3, None, 9)
    """
    def frame(field, allow_missing=False):
        value = rec[columns[field]]
        if field == "apex" and _frame_or_none(value) is None:
            try:
                if float(value) < 0:
                    return None
            except (TypeError, ValueError):
                pass
        return parse_frame(value, dataset=dataset, file=file, row=row, column=columns[field],
                           allow_missing=allow_missing)

    onset, apex, offset = frame("onset"), frame("apex", allow_missing=True), frame("offset")
    # Order checks first: a clear message beats "frame not found" for an offset typo.
    if onset == offset:
        raise AnnotationError(dataset, file, f"zero-length clip: onset == offset == {onset}", row=row)
    if onset > offset:
        raise AnnotationError(dataset, file, f"onset {onset} is after offset {offset}", row=row)
    if apex is not None and not onset <= apex <= offset:
        raise AnnotationError(dataset, file, f"apex {apex} is not within onset..offset {onset}..{offset}", row=row)
    return onset, apex, offset


__all__ = ["FIXES_FILE", "RowErrors", "apply_fixes", "load_fixes", "logger", "parse_frames"]
