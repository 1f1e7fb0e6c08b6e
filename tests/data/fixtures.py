"""Tiny dataset fixtures written in each dataset's official layout.

Each ``write_<dataset>_fixture(root, clips=None, ...)`` writes the annotation
spreadsheet (with openpyxl, laid out like the official file) and small frames
(8×8 JPEG/BMP written with OpenCV) under ``root`` and returns ``(root, clips)``,
``clips`` being the list of clip dicts written, so tests can compare what a
reader returns with what was written.  A clip dict has ``subject``, ``clip``,
``emotion``, ``onset``, ``apex``, ``offset`` and optionally ``frames`` (the
frame numbers to write; default onset..offset) and dataset-specific keys.

Reused by the training tests to build composite and holdout-database fixtures.

Example:
    >>> root, clips = write_samm_fixture(tmp_path / "SAMM")  # doctest: +SKIP
    >>> read_dataset("samm", root)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import openpyxl

SIZE = 8


def write_frames(folder, numbers, pattern: str = "img{n}.jpg", size: int = SIZE) -> list[Path]:
    """Write one small image per frame number (``pattern.format(n=...)``); returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in numbers:
        img = np.full((size, size, 3), (n * 37) % 256, dtype=np.uint8)
        img[0, 0] = (255 - (n % 256), 0, 0)
        path = folder / pattern.format(n=n)
        assert cv2.imwrite(str(path), img), path
        paths.append(path)
    return paths


def _frames(clip) -> list[int]:
    return list(clip.get("frames") or range(clip["onset"], clip["offset"] + 1))


def _save(path: Path, sheets: dict) -> Path:
    """Write ``{sheet name: list of rows}`` to an .xlsx workbook."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(list(row))
    wb.save(path)
    return path


# ----------------------------------------------------------------- CASME II


CASME2_CLIPS = [
    dict(subject="01", clip="EP02_01f", emotion="happiness", onset=46, apex=59, offset=62, au="12"),
    dict(subject="01", clip="EP03_02", emotion="others", onset=10, apex=12, offset=15, au="L10"),
    dict(subject="02", clip="EP09_04", emotion="disgust", onset=5, apex=7, offset=9, au="4"),
    dict(subject="02", clip="EP11_01", emotion="repression", onset=20, apex=21, offset=24, au="14"),
    dict(subject="03", clip="EP01_06", emotion="surprise", onset=30, apex=33, offset=35, au="1+2"),
    dict(subject="03", clip="EP18_03", emotion="fear", onset=3, apex=4, offset=6, au="20"),
    dict(subject="04", clip="EP02_02", emotion="sadness", onset=8, apex=9, offset=11, au="15"),
]


def write_casme2_fixture(root, clips=None):
    """CASME II: ``CASME2-coding-20140508.xlsx`` + ``CASME2-RAW/subNN/<clip>/imgN.jpg``."""
    root, clips = Path(root), [dict(c) for c in (clips or CASME2_CLIPS)]
    rows = [["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
             "Estimated Emotion"]]
    for c in clips:
        rows.append([int(c["subject"]), c["clip"], None, c["onset"], "/" if c["apex"] is None else c["apex"],
                     c["offset"], None, c.get("au", ""), c["emotion"]])
        write_frames(root / "CASME2-RAW" / f"sub{c['subject']}" / c["clip"], _frames(c))
    _save(root / "CASME2-coding-20140508.xlsx", {"Sheet1": rows})
    return root, clips


# The official CASME II release as issue 11 records it.  MEB's '/'-apex clips (subject, clip, the apex MEB
# estimates) and the six clips whose annotated onset..offset disagrees with the frames in their folders
# (subject, clip, annotated onset, offset, apex cell, frames present).
CASME2_SLASH_APEX = [
    ("04", "EP12_01f", 279), ("05", "EP03_01", 68), ("05", "EP07_01", 77), ("05", "EP09_05f", 81),
    ("05", "EP16_04f", 166), ("06", "EP01_01", 100), ("07", "EP06_01", 78), ("12", "EP08_07", 187),
    ("12", "EP09_02", 89), ("13", "EP08_01", 80), ("16", "EP01_05", 88), ("17", "EP03_02", 134),
    ("17", "EP06_04", 231), ("17", "EP13_06", 53), ("17", "EP15_01", 329), ("18", "EP18_01", 111),
    ("20", "EP15_03f", 91), ("20", "EP16_01", 103), ("25", "EP03_02", 98), ("25", "EP10_10", 153),
    ("25", "EP12_01", 98),
]
CASME2_FRAME_MISMATCH = [
    ("12", "EP09_06", 66, 111, 80, range(66, 107)), ("16", "EP01_08", 73, 110, 90, range(73, 97)),
    ("20", "EP16_01", 71, 111, "/", range(71, 107)), ("12", "EP09_02", 16, 101, "/", range(161, 207)),
    ("24", "EP02_07", 24, 66, 64, range(61, 107)), ("07", "EP06_01", 15, 68, "/", range(56, 92)),
]


def official_casme2_clips(emotions=("disgust", "happiness", "surprise")) -> list[dict]:
    """The 24 clips above in the official sheet's order (subject number, then file name), '/' apexes
    as '/' (``apex=None``), the six mismatched clips with only the frames the record says are present."""
    clips = {}
    for sub, clip, apex in CASME2_SLASH_APEX:  # a short clip around MEB's apex
        clips[(sub, clip)] = dict(subject=sub, clip=clip, onset=apex - 3, apex=None, offset=apex + 3)
    for sub, clip, onset, offset, apex, frames in CASME2_FRAME_MISMATCH:
        clips[(sub, clip)] = dict(subject=sub, clip=clip, onset=onset, apex=None if apex == "/" else apex,
                                  offset=offset, frames=list(frames))
    ordered = [clips[k] for k in sorted(clips, key=lambda k: (int(k[0]), k[1]))]
    for i, c in enumerate(ordered):
        c["emotion"] = emotions[i % len(emotions)]
    return ordered


# ----------------------------------------------------------------- CASME I


CASME_CLIPS = [
    dict(part="A", subject="01", clip="EP01_5", emotion="tense", onset=2, apex=4, offset=6, au="4"),
    dict(part="A", subject="02", clip="EP03_1", emotion="happiness", onset=10, apex=12, offset=13, au="12"),
    dict(part="B", subject="08", clip="EP01_12", emotion="disgust", onset=1, apex=3, offset=5, au="9"),
    dict(part="B", subject="09", clip="EP02_3", emotion="surprise", onset=7, apex=8, offset=10, au="1+2"),
]


def write_casme_fixture(root, clips=None):
    """CASME I: ``CASME_{A,B}/Section {A,B}/Section {A,B}.xlsx`` + ``subNN/<clip>/<clip>-N.jpg`` beside it.

    The official files are ``.xls``; the fixture writes the ``.xlsx`` conversion
    the reader uses when ``xlrd`` is not installed.
    """
    root, clips = Path(root), [dict(c) for c in (clips or CASME_CLIPS)]
    for part in sorted({c["part"] for c in clips}):
        folder = root / f"CASME_{part}" / f"Section {part}"
        rows = [["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None,
                 "Action Units", "Emotion"]]
        for c in (c for c in clips if c["part"] == part):
            rows.append([int(c["subject"]), c["clip"], None, c["onset"], c["apex"], None, c["offset"], None,
                         c.get("au", ""), c["emotion"]])
            write_frames(folder / f"sub{c['subject']}" / c["clip"], _frames(c), pattern=c["clip"] + "-{n}.jpg")
        _save(folder / f"Section {part}.xlsx", {"Sheet1": rows})
    return root, clips


# ----------------------------------------------------------------- SAMM


SAMM_CLIPS = [
    dict(subject="006", clip="006_1_2", emotion="Happiness", onset=5562, apex=5564, offset=5566, au="R12",
         objective=1),
    dict(subject="006", clip="006_1_3", emotion="Anger", onset=100, apex=102, offset=104, au="4", objective=2),
    dict(subject="007", clip="007_3_1", emotion="Surprise", onset=20, apex=21, offset=23, au="1+2", objective=6),
    dict(subject="007", clip="007_5_2", emotion="Other", onset=40, apex=41, offset=43, au="14", objective=7),
    dict(subject="011", clip="011_2_1", emotion="Contempt", onset=7, apex=None, offset=9, au="R14", objective=3),
]


def write_samm_fixture(root, clips=None, preamble: int = 12):
    """SAMM: ``SAMM_Micro_FACS_Codes_v2.xlsx`` (notes block of ``preamble`` rows and a blank row
    above the header) + ``SAMM/<subject>/<clip>/<subject>_<NNNNN>.jpg``.  ``apex=None`` writes ``-1``."""
    root, clips = Path(root), [dict(c) for c in (clips or SAMM_CLIPS)]
    rows = [["SAMM Micro-Movement FACS Codes"]] + [[f"note line {i}"] for i in range(1, preamble)] + [[]]
    rows.append(["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
                 "Duration", "Type", "Action Units", "Notes", "Estimated Emotion", "Objective Classes"])
    for c in clips:
        rows.append([int(c["subject"]), c["clip"], 1, c["onset"], -1 if c["apex"] is None else c["apex"],
                     c["offset"], c["offset"] - c["onset"] + 1, "Micro - 1/2", c.get("au", ""), "",
                     c["emotion"], c.get("objective", 7)])
        write_frames(root / "SAMM" / c["subject"] / c["clip"], _frames(c),
                     pattern=c["subject"] + "_{n:05d}.jpg")
    _save(root / "SAMM_Micro_FACS_Codes_v2.xlsx", {"FACS Codes": rows})
    return root, clips


# ----------------------------------------------------------------- SMIC


SMIC_CLIPS = [
    dict(subject="s1", clip="s1_ne_01", emotion="negative", onset=69213, offset=69217),
    dict(subject="s1", clip="s1_po_01", emotion="positive", onset=1200, offset=1203),
    dict(subject="s2", clip="s2_sur_01", emotion="surprise", onset=500, offset=506),
    dict(subject="s3", clip="s3_ne_02", emotion="negative", onset=10, offset=12),
]


def write_smic_fixture(root, clips=None, modality: str = "HS"):
    """SMIC: ``<modality>/sN/micro/<emotion>/<clip>/imageNNNNNN.bmp`` (+ an ignored ``non_micro`` folder)."""
    root, clips = Path(root), [dict(c) for c in (clips or SMIC_CLIPS)]
    for c in clips:
        c.setdefault("apex", None)
        write_frames(root / modality / c["subject"] / "micro" / c["emotion"] / c["clip"], _frames(c),
                     pattern="image{n:06d}.bmp")
    first = clips[0]["subject"]
    write_frames(root / modality / first / "non_micro" / f"{first}_n1", [1, 2], pattern="image{n:06d}.bmp")
    return root, clips


# ----------------------------------------------------------------- CAS(ME)²


CASME_SQ_SUBJECTS = {1: "15", 2: "16"}  # subject number -> rawpic folder number
CASME_SQ_VIDEOS = {"0101": ("disgust1", "disgustingteeth"), "0401": ("anger1", "girlcrashing"),
                   "0502": ("happy2", "funnyerrors")}
CASME_SQ_CLIPS = [
    dict(subject_no=1, clip="disgust1_1", emotion="negative", onset=5, apex=7, offset=9, type="micro-expression",
         self_report="disgust", au="4"),
    dict(subject_no=1, clip="disgust1_2", emotion="negative", onset=12, apex=16, offset=25,
         type="macro-expression", self_report="disgust", au="9"),
    dict(subject_no=2, clip="happy2_1", emotion="positive", onset=3, apex=4, offset=6, type="micro-expression",
         self_report="happiness", au="12"),
    dict(subject_no=2, clip="anger1_1", emotion="others", onset=8, apex=10, offset=0, type="micro-expression",
         self_report="anger", au="R4"),
]


def write_casme_sq_fixture(root, clips=None, n_frames: int = 30):
    """CAS(ME)²: ``CAS(ME)^2code_final.xlsx`` (no header; sheets ``CASFEcode_final``, ``naming rule1``,
    ``naming rule2``) + ``rawpic/sNN/NN_<code><name>/imgN.jpg`` long videos of ``n_frames`` frames."""
    root, clips = Path(root), [dict(c) for c in (clips or CASME_SQ_CLIPS)]
    main = [[c["subject_no"], c["clip"], c["onset"], c["apex"], c["offset"], c.get("au", ""), c["emotion"],
             c["type"], c.get("self_report", "")] for c in clips]
    rule1 = [[int(folder), f"s{folder}", number] for number, folder in CASME_SQ_SUBJECTS.items()]
    rule2 = [[code, name] for code, (name, _) in CASME_SQ_VIDEOS.items()]
    _save(root / "CAS(ME)^2code_final.xlsx", {"CASFEcode_final": main, "naming rule1": rule1,
                                              "naming rule2": rule2})
    codes = {name: (code, title) for code, (name, title) in CASME_SQ_VIDEOS.items()}
    for c in clips:
        folder = CASME_SQ_SUBJECTS[c["subject_no"]]
        code, title = codes[c["clip"].rsplit("_", 1)[0]]
        c["subject"], c["video"] = f"s{folder}", f"{folder}_{code}{title}"
        video_dir = root / "rawpic" / c["subject"] / c["video"]
        if not video_dir.is_dir():
            write_frames(video_dir, range(1, n_frames + 1))
    return root, clips


# ----------------------------------------------------------------- CAS(ME)³


CASME3_CLIPS = [
    dict(subject="spNO.1", video="a", emotion="happy", onset=5, apex=7, offset=10, au="12", objective=1),
    dict(subject="spNO.1", video="a", emotion="disgust", onset=15, apex=16, offset=19, au="9", objective=2),
    dict(subject="spNO.2", video="b", emotion="surprise", onset=2, apex=3, offset=6, au="1+2", objective=6),
    dict(subject="spNO.2", video="c", emotion="others", onset=0, apex=1, offset=3, au="14", objective=7),
]
CASME3_KNOWN_ERRORS = [  # as in the official v2 file (see kerasmer/data/readers/annotation_fixes.csv)
    dict(subject="spNO.216", video="d", emotion="disgust", onset=3647, apex=2668, offset=2694, au="4",
         objective=2, frames=range(2640, 2700)),
    dict(subject="spNO.216", video="e", emotion="fear", onset=0, apex=0, offset=25, au="20", objective=4,
         frames=range(1, 30)),
]


def write_casme3_fixture(root, clips=None, n_frames: int = 25):
    """CAS(ME)³ part A: ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (sheet ``label``) +
    ``part_A/data/part_A/<subject>/<video>/color/N.jpg`` (frames 0..n_frames-1 unless ``frames``)."""
    root, clips = Path(root), [dict(c) for c in (clips or CASME3_CLIPS)]
    rows = [["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]]
    for c in clips:
        rows.append([c["subject"], c["video"], c["onset"], c["apex"], c["offset"], c.get("au", ""),
                     c.get("objective", 7), c["emotion"]])
        color = root / "part_A" / "data" / "part_A" / c["subject"] / c["video"] / "color"
        write_frames(color, c.get("frames") or range(n_frames), pattern="{n}.jpg")
    _save(root / "annotation" / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", {"label": rows})
    return root, clips


# ----------------------------------------------------------------- MMEW


MMEW_CLIPS = [
    dict(subject="S01", clip="S01-01-001", emotion="happiness", onset=1, apex=3, offset=5, au="12"),
    dict(subject="S01", clip="S01-02-001", emotion="disgust", onset=2, apex=4, offset=6, au="9"),
    dict(subject="S02", clip="S02-01-003", emotion="surprise", onset=3, apex=5, offset=8, au="1+2"),
    dict(subject="S03", clip="S03-04-002", emotion="others", onset=1, apex=2, offset=4, au="14"),
]


def write_mmew_fixture(root, clips=None):
    """MMEW: ``MMEW_Micro_Exp.xlsx`` + ``Micro_Expression/<emotion>/<clip>/N.jpg``."""
    root, clips = Path(root), [dict(c) for c in (clips or MMEW_CLIPS)]
    rows = [["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
             "Estimated Emotion", "remarks"]]
    for c in clips:
        rows.append([c["subject"], c["clip"], c["onset"], c["apex"], c["offset"], c.get("au", ""),
                     c["emotion"], ""])
        write_frames(root / "Micro_Expression" / c["emotion"] / c["clip"], _frames(c), pattern="{n}.jpg")
    _save(root / "MMEW_Micro_Exp.xlsx", {"Sheet1": rows})
    return root, clips


def filler_clips(n: int, *, subject: str, prefix: str, emotion: str, **keys) -> list[dict]:
    """``n`` valid 3-frame clips, to push a row to a given spreadsheet row number."""
    return [dict(subject=subject, clip=f"{prefix}{i:03d}", emotion=emotion, onset=1, apex=2, offset=3, **keys)
            for i in range(n)]


__all__ = [
    "CASME2_CLIPS", "CASME3_CLIPS", "CASME3_KNOWN_ERRORS", "CASME_CLIPS", "CASME_SQ_CLIPS", "MMEW_CLIPS",
    "SAMM_CLIPS", "SMIC_CLIPS", "CASME2_FRAME_MISMATCH", "CASME2_SLASH_APEX", "filler_clips",
    "official_casme2_clips", "write_casme2_fixture", "write_casme3_fixture",
    "write_casme_fixture", "write_casme_sq_fixture", "write_frames", "write_mmew_fixture",
    "write_samm_fixture", "write_smic_fixture",
]
