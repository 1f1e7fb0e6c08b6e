"""CASME II reader and the shared reader helpers, on small hand-written fixtures."""

import math
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

from kerasmer.data import AnnotationError, read_dataset
from kerasmer.data.readers import _common as common

HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
          "Estimated Emotion"]


def write_frames(folder: Path, numbers, prefix="img"):
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        cv2.imwrite(str(folder / f"{prefix}{n}.jpg"), np.full((8, 8, 3), n % 255, np.uint8))


def write_coding(path: Path, rows, header=HEADER):
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


@pytest.fixture
def casme2_root(tmp_path):
    """Two clips; frames 9..100 cross the digit-count boundaries; one '/' apex."""
    write_frames(tmp_path / "CASME2-RAW" / "sub01" / "EP02_01f", range(9, 101))
    write_frames(tmp_path / "CASME2-RAW" / "sub12" / "EP03_02", range(46, 60))
    write_coding(tmp_path / "CASME2-coding-20140508.xlsx", [
        [1, "EP02_01f", None, 9, 50, 100, "4+L10", "Disgust"],
        [12, "EP03_02", None, 46, "/", 59, "12", "happiness"],
    ])
    return tmp_path


def test_reads_official_layout(casme2_root):
    df = read_dataset("casme2", casme2_root)
    assert list(df["subject"]) == ["01", "12"]
    assert list(df["clip"]) == ["EP02_01f", "EP03_02"]
    assert list(df["emotion"]) == ["disgust", "happiness"]
    assert list(df["action_units"]) == ["4+L10", "12"]
    assert df["apex"].dtype == "Int64"
    assert df.loc[0, "apex"] == 50 and pd.isna(df.loc[1, "apex"])
    assert list(df["apex_missing"]) == [False, True]
    assert (df["fps"] == 200).all() and (df["dataset"] == "casme2").all()
    assert "row 3" in df.loc[1, "source"]
    # numeric, not lexical, frame order (lexical would put img10 before img9)
    numbers = df.loc[0, "frame_numbers"]
    assert numbers == list(range(9, 101))
    assert [Path(p).name for p in df.loc[0, "frame_paths"][:3]] == ["img9.jpg", "img10.jpg", "img11.jpg"]
    assert all(Path(p).is_absolute() for p in df.loc[0, "frame_paths"])


def test_reads_cropped_tree(tmp_path):
    write_frames(tmp_path / "Cropped" / "sub03" / "EP01_01", range(98, 103), prefix="reg_img")
    write_coding(tmp_path / "CASME2-coding-x.xlsx", [[3, "EP01_01", None, 98, 99, 102, "1+2", "surprise"]])
    for frames in ("auto", "cropped"):
        df = read_dataset("casme2", tmp_path, frames=frames)
        assert df.loc[0, "frame_numbers"] == [98, 99, 100, 101, 102]
        assert Path(df.loc[0, "frame_paths"][2]).name == "reg_img100.jpg"
    with pytest.raises(AnnotationError, match="raw frame folder"):
        read_dataset("casme2", tmp_path, frames="raw")


def test_missing_spreadsheet(tmp_path):
    write_frames(tmp_path / "CASME2-RAW" / "sub01" / "EP01_01", range(1, 5))
    with pytest.raises(AnnotationError, match="coding spreadsheet not found") as err:
        read_dataset("casme2", tmp_path)
    assert str(tmp_path) in str(err.value)


def test_unreadable_spreadsheet(tmp_path):
    (tmp_path / "CASME2-coding-bad.xlsx").write_text("not a spreadsheet")
    with pytest.raises(AnnotationError, match="cannot read spreadsheet") as err:
        read_dataset("casme2", tmp_path)
    assert "CASME2-coding-bad.xlsx" in str(err.value)


def test_missing_columns_are_named(tmp_path):
    header = ["Subject", "Filename", "OnsetFrame", "OffsetFrame", "Estimated Emotion"]
    write_coding(tmp_path / "CASME2-coding-1.xlsx", [[1, "EP01_01", 1, 3, "others"]], header=header)
    with pytest.raises(AnnotationError) as err:
        read_dataset("casme2", tmp_path)
    msg = str(err.value)
    assert "ApexFrame" in msg and "Action Units" in msg and "CASME2-coding-1.xlsx" in msg
    assert "Subject" not in msg.split("columns present")[0]  # only missing ones listed first


@pytest.mark.parametrize("row, expected", [
    ([1, "EP09_09", None, 9, 10, 20, "12", "others"], r"row 3.*clip folder .*EP09_09.* not found"),
    ([1, "EP02_01f", None, 5, 10, 20, "12", "others"], r"row 3.*outside the frames present 9\.\.100"),
    ([1, "EP02_01f", None, 20, 10, 30, "12", "others"], r"row 3.*apex 10 is not within"),
    ([1, "EP02_01f", None, 40, 30, 20, "12", "others"], r"row 3.*onset 40 is after offset 20"),
    ([1, "EP02_01f", None, 20, "abc", 30, "12", "others"], r"row 3.*'ApexFrame' holds 'abc'"),
    ([1, "EP02_01f", None, "/", 25, 30, "12", "others"], r"row 3.*'OnsetFrame' is empty"),
])
def test_row_errors_name_file_and_row(casme2_root, row, expected):
    write_coding(casme2_root / "CASME2-coding-20140508.xlsx", [[1, "EP02_01f", None, 9, 50, 100, "", "x"], row])
    with pytest.raises(AnnotationError, match=expected) as err:
        read_dataset("casme2", casme2_root)
    assert "CASME2-coding-20140508.xlsx" in str(err.value)
    assert err.value.row == 3 and err.value.dataset == "casme2"


def test_errors_warn_skips_bad_rows_visibly(casme2_root):
    write_coding(casme2_root / "CASME2-coding-20140508.xlsx", [
        [1, "EP02_01f", None, 9, 50, 100, "", "others"],
        [1, "EP77_01", None, 9, 10, 20, "", "others"],
    ])
    with pytest.warns(UserWarning, match="row 3.*EP77_01"):
        df = read_dataset("casme2", casme2_root, errors="warn")
    assert list(df["clip"]) == ["EP02_01f"]


def test_duplicate_clip_is_an_error(casme2_root):
    write_coding(casme2_root / "CASME2-coding-20140508.xlsx", [[1, "EP02_01f", None, 9, 50, 100, "", "a"]] * 2)
    with pytest.raises(AnnotationError, match="annotated twice"):
        read_dataset("casme2", casme2_root)


def test_several_spreadsheets_are_ambiguous(casme2_root):
    write_coding(casme2_root / "CASME2-coding-other.xlsx", [[1, "EP02_01f", None, 9, 50, 100, "", "a"]])
    with pytest.raises(AnnotationError, match="several files match"):
        read_dataset("casme2", casme2_root)
    df = read_dataset("casme2", casme2_root, annotation=casme2_root / "CASME2-coding-other.xlsx")
    assert len(df) == 1


# ----------------------------------------------------------------- shared helpers


@pytest.mark.parametrize("name, number", [
    ("img46.jpg", 46), ("reg_img46.jpg", 46), ("006_05562.jpg", 5562), ("image069213.bmp", 69213),
    ("12.jpg", 12), ("sub01/EP02_01f/img7.jpg", 7), ("cover.jpg", None),
])
def test_frame_number(name, number):
    assert common.frame_number(name) == number


def test_list_frames_numeric_order_and_errors(tmp_path):
    write_frames(tmp_path / "c", [100, 9, 10], prefix="006_0")
    (tmp_path / "c" / "notes.txt").write_text("ignored: not an image")
    paths, numbers = common.list_frames(tmp_path / "c", dataset="samm")
    assert numbers == [9, 10, 100] and [Path(p).name for p in paths] == ["006_09.jpg", "006_010.jpg", "006_0100.jpg"]
    with pytest.raises(AnnotationError, match="clip folder not found"):
        common.list_frames(tmp_path / "nope", dataset="samm")
    (tmp_path / "e").mkdir()
    with pytest.raises(AnnotationError, match="no image frames"):
        common.list_frames(tmp_path / "e", dataset="samm")
    write_frames(tmp_path / "d", [5], prefix="img")
    write_frames(tmp_path / "d", [5], prefix="img0")
    with pytest.raises(AnnotationError, match="two images with frame number 5"):
        common.list_frames(tmp_path / "d", dataset="samm")


@pytest.mark.parametrize("value, expected", [
    (46, 46), (46.0, 46), (np.int64(7), 7), (" 46 ", 46), ("46.0", 46),
    ("/", None), ("", None), (" ", None), (float("nan"), None), (None, None), (pd.NA, None),
])
def test_parse_frame_valid(value, expected):
    assert common.parse_frame(value, dataset="d", file="f.xlsx", row=4, column="ApexFrame") == expected


@pytest.mark.parametrize("value", ["abc", 46.5, -3, "4 6", True])
def test_parse_frame_garbage(value):
    with pytest.raises(AnnotationError, match=r"f\.xlsx, row 4: column 'ApexFrame' holds"):
        common.parse_frame(value, dataset="d", file="f.xlsx", row=4, column="ApexFrame")


def test_read_xlsx_drops_blank_unnamed_columns_and_indexes_rows(tmp_path):
    path = write_coding(tmp_path / "a.xlsx", [[1, "EP01", None, 3, "/", 9, "12", "x"], [None] * 8,
                                              [2, "EP02", None, 4, 5, 6, "", "y"]])
    table = common.read_xlsx(path, dataset="d")
    assert list(table.columns) == [c for c in HEADER if c]
    assert list(table.index) == [2, 4]  # spreadsheet rows; the blank row 3 is not a record
    assert table.loc[2, "ApexFrame"] == "/"
    with pytest.raises(AnnotationError, match="annotation spreadsheet not found"):
        common.read_xlsx(tmp_path / "missing.xlsx", dataset="d")


def test_subject_id_and_make_row():
    assert common.subject_id(1, width=2) == "01"
    assert common.subject_id(1.0, width=2) == "01"
    assert common.subject_id("sub07", width=2, strip_prefix="sub") == "07"
    assert common.subject_id("006") == "006" and common.subject_id("s3") == "s3"
    row = common.make_row(dataset="d", subject="01", clip="c", emotion=" Fear ", onset=3, apex=None, offset=5,
                          action_units=None, frame_paths=["a", "b", "c", "d"], frame_numbers=[2, 3, 4, 5],
                          fps=100, file="f.xlsx", row=9, region="x")
    assert row["emotion"] == "fear" and row["apex_missing"] and row["action_units"] == ""
    assert row["source"] == "f.xlsx:row 9" and row["region"] == "x"
    assert not math.isnan(row["fps"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = common.to_frame([row], dataset="d", file="f.xlsx")
    assert df.columns[-1] == "region" and df["apex"].dtype == "Int64"


def test_fix_table_is_applied_and_logged(tmp_path, caplog):
    """A '/' apex and an offset before the apex are corrected by a fix table, and each fix is logged."""
    import logging

    from tests.data.fixtures import write_casme2_fixture

    clips = [dict(subject="01", clip="EP01_01", emotion="happiness", onset=3, apex=None, offset=8, au="12"),
             dict(subject="02", clip="EP02_01", emotion="disgust", onset=2, apex=6, offset=4, au="9",
                  frames=range(2, 12))]
    root, _ = write_casme2_fixture(tmp_path, clips)
    # without fixes the second row is invalid (offset 4 < apex 6): a clear error naming its row
    with pytest.raises(AnnotationError, match="row 3"):
        read_dataset("casme2", root, fixes=False)
    fixes = pd.DataFrame([
        dict(dataset="casme2", file="CASME2-coding-*.xlsx", row="", subject="01", clip="EP01_01", field="apex",
             when="missing", value="5", reason="test: apex missing", source="test"),
        dict(dataset="casme2", file="CASME2-coding-*.xlsx", row="", subject="02", clip="EP02_01", field="offset",
             when="invalid", value="9", reason="test: offset before apex", source="test"),
    ])
    with caplog.at_level(logging.INFO, logger="kerasmer.data"):
        df = read_dataset("casme2", root, fixes=fixes)
    assert df["apex"].tolist() == [5, 6] and df["offset"].tolist() == [8, 9]
    assert len(df.attrs["fixes_applied"]) == 2
    assert sum("test: offset before apex" in r.getMessage() for r in caplog.records) == 1
    # errors="drop" instead leaves the invalid row out and reports the count
    with pytest.warns(UserWarning, match="dropped 1 invalid row"):
        dropped = read_dataset("casme2", root, fixes=False, errors="drop")
    assert dropped["clip"].tolist() == ["EP01_01"] and len(dropped.attrs["dropped"]) == 1
