"""The on-disk layouts the synthetic set can be written in: CASME II, SAMM and SMIC-HS.

Each layout names its subjects, clips and frame files as the real release does, writes its
annotation (a spreadsheet, or for SMIC only the folder tree) and knows which paths are its
own, so an earlier synthetic set can be replaced without touching anything else.  The
readers in :mod:`kerasmer.data.readers` (``casme2``, ``samm``, ``smic``) read what is
written here; ``tests/data/fixtures.py`` documents the same layouts.

* CASME II (Yan et al., PLoS ONE 2014): ``CASME2-RAW/subNN/EPxx_yy/imgN.jpg`` and
  ``CASME2-coding-synthetic.xlsx`` (Subject as an int, an unnamed blank column).
* SAMM (Davison et al., IEEE TAC 2018): ``SAMM/006/006_1_2/006_05562.jpg`` (grey frames) and
  ``SAMM_Micro_FACS_Codes_synthetic.xlsx`` with a block of notes above its header row.
* SMIC-HS (Li et al., FG 2013): ``HS/s1/micro/negative/s1_ne_01/image069213.bmp``; the label is
  the emotion folder, onset and offset the first and last frame.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import shutil
from pathlib import Path
from typing import Callable

from kerasmer.data.readers.fixes import load_fixes

CODING_NAME = "CASME2-coding-synthetic.xlsx"
SAMM_SHEET = "SAMM_Micro_FACS_Codes_synthetic.xlsx"  # not v2: the fix table keys rows of v2
MARKER_NAME = "kerasmer_synthetic.json"
_FIXED_TIME = datetime.datetime(2014, 5, 8)  # a fixed timestamp keeps a spreadsheet identical per seed
_SMIC_ABBR = {"negative": "ne", "positive": "po", "surprise": "sur"}


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one dataset names and stores a clip.

    Attributes:
        name: the reader's name.
        owned: paths under the root that a synthetic set of this layout writes (cleared on replace).
        subject: subject index (0-based) -> the dataset's subject id.
        frame: ``(root, subject_id, clip, emotion, frame_number) -> path`` of one frame.
        grey: frames are written single-channel.
        write_sheet: ``(root, records)`` writes the annotation (None: the folder tree is the annotation).
    """

    name: str
    owned: tuple
    subject: Callable[[int], str]
    frame: Callable[..., Path]
    grey: bool = False
    write_sheet: Callable | None = None


def _workbook():
    from openpyxl import Workbook  # only needed to write a set; keeps `import kerasmer` light

    wb = Workbook()
    wb.properties.created = wb.properties.modified = _FIXED_TIME
    return wb


def _write_casme2_sheet(root: Path, records: list[dict]) -> None:
    """CASME II's coding sheet, incl. its unnamed blank column."""
    wb = _workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame",
               "Action Units", "Estimated Emotion"])
    for r in records:
        ws.append([int(r["subject"]), r["clip"], None, r["onset"], r["apex"], r["offset"], r["aus"], r["emotion"]])
    wb.save(root / CODING_NAME)


def _write_samm_sheet(root: Path, records: list[dict]) -> None:
    """SAMM's FACS-code sheet: a block of notes, a blank row, then the header row and one row per clip."""
    wb = _workbook()
    ws = wb.active
    ws.title = "FACS Codes"
    ws.append(["SAMM Micro-Movement FACS Codes (kerasmer synthetic set)"])
    for note in ("Frames are numbered from the start of each recording; grey frames at 200 fps.",
                 "Emotion classes follow the SAMM coding; Objective Classes follow Davison et al. 2018."):
        ws.append([note])
    ws.append([])
    ws.append(["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
               "Duration", "Type", "Action Units", "Notes", "Estimated Emotion", "Objective Classes"])
    for r in records:
        ws.append([int(r["subject"]), r["clip"], int(r["clip"].split("_")[1]), r["onset"], r["apex"], r["offset"],
                   r["offset"] - r["onset"] + 1, "Micro - 1/2", r["aus"], "", r["emotion"].capitalize(),
                   _objective(r["aus"])])
    wb.save(root / SAMM_SHEET)


def _objective(aus: str) -> int:
    """SAMM's objective class (Davison et al. 2018, table 2) from the AUs drawn: 1..7."""
    a = {int(x) for x in aus.split("+") if x}
    if 12 in a or 6 in a:
        return 1
    if a & {4, 7, 24}:
        return 2
    if 14 in a:
        return 3
    if a & {9, 10}:
        return 4
    if 1 in a and 2 in a or 5 in a or 26 in a:
        return 6
    if a & {15, 17}:
        return 5
    return 7


LAYOUTS = {
    "casme2": Layout(
        "casme2", ("CASME2-RAW", CODING_NAME), subject=lambda i: f"{i + 1:02d}",
        frame=lambda root, sid, clip, emo, n: root / "CASME2-RAW" / f"sub{sid}" / clip / f"img{n}.jpg",
        write_sheet=_write_casme2_sheet),
    "samm": Layout(
        "samm", ("SAMM", SAMM_SHEET), subject=lambda i: f"{i + 6:03d}",  # SAMM numbers subjects from 006
        frame=lambda root, sid, clip, emo, n: root / "SAMM" / sid / clip / f"{sid}_{n:05d}.jpg",
        grey=True, write_sheet=_write_samm_sheet),
    "smic": Layout(
        "smic", ("HS",), subject=lambda i: f"s{i + 1}",
        frame=lambda root, sid, clip, emo, n: root / "HS" / sid / "micro" / emo / clip / f"image{n:06d}.bmp"),
}


@functools.lru_cache(maxsize=1)
def _casme2_fixed() -> frozenset:
    """(subject, clip) pairs the packaged fix table corrects in the real CASME II."""
    table = load_fixes()
    part = table[table["dataset"] == "casme2"]
    return frozenset(zip(part["subject"], part["clip"]))


def clip_names(layout: str, subject_id: str, labels: list[str], rng) -> list[str]:
    """Clip names of one subject's clips, as the dataset names them (never giving the class away in CASME II/SAMM).

    Args:
        layout: a name of :data:`LAYOUTS`.
        subject_id: the subject's id in that layout.
        labels: the written label of each clip (SMIC names clips by emotion, as the release does).
        rng: a ``numpy.random.Generator``.

    Returns:
        One distinct name per clip.

    Example:
        >>> import numpy as np
        >>> clip_names("smic", "s1", ["negative", "negative"], np.random.default_rng(0))
        ['s1_ne_01', 's1_ne_02']
    """
    names, seen = [], {}
    for i, label in enumerate(labels):
        if layout == "casme2":
            take = int(rng.integers(1, 4))
            # never a clip the real release's fix table names (without another draw: the frames stay the same)
            while (subject_id, f"EP{i + 1:02d}_{take:02d}") in _casme2_fixed():
                take += 3
            names.append(f"EP{i + 1:02d}_{take:02d}")
        elif layout == "samm":
            code = int(rng.integers(1, 8))  # the inducement video
            seen[code] = seen.get(code, 0) + 1
            names.append(f"{subject_id}_{code}_{seen[code]}")
        else:
            abbr = _SMIC_ABBR[label]
            seen[abbr] = seen.get(abbr, 0) + 1
            names.append(f"{subject_id}_{abbr}_{seen[abbr]:02d}")
    return names


def reuse_or_clear(root: Path, layout: Layout, params: dict, overwrite: bool) -> bool:
    """True if ``root`` holds a set made with ``params``; else clear our own earlier set (or refuse a foreign folder).

    Args:
        root: the set's folder.
        layout: the layout about to be written.
        params: everything the set depends on (the marker's contents).
        overwrite: clear the layout's paths even without a marker.

    Returns:
        Whether the existing set can be reused as is.

    Raises:
        FileExistsError: ``root`` holds files but no synthetic set, and ``overwrite`` is False.
    """
    marker = root / MARKER_NAME
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == params:
                return True
        except ValueError:
            pass  # a damaged marker: the set is rewritten
        overwrite = True  # our own earlier set: replace it
    owned = ("CASME2-RAW", CODING_NAME, "SAMM", SAMM_SHEET, "HS")
    if root.is_dir() and any(root.iterdir()) and all(p.name in owned for p in root.iterdir()):
        overwrite = True  # an interrupted write of ours (no marker yet): nothing else is there
    if overwrite:
        for name in owned:
            path = root / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
    elif root.exists() and any(root.iterdir()):
        raise FileExistsError(f"make_synthetic: {root} is not empty and holds no synthetic set; "
                              "choose an empty folder or pass overwrite=True")
    return False


__all__ = ["CODING_NAME", "LAYOUTS", "MARKER_NAME", "SAMM_SHEET", "Layout", "clip_names", "reuse_or_clear"]
