"""Bad input gets an AnnotationError naming the dataset, the file and the row."""

import re
import shutil
from pathlib import Path

import openpyxl
import pytest

from kerasmer.data.readers import casme as casme_reader
from kerasmer.data.readers import read_dataset
from kerasmer.data.schema import AnnotationError
from tests.data import fixtures as fx

SAMM_XLSX = "SAMM_Micro_FACS_Codes_v2.xlsx"


def _edit_cell(path: Path, sheet, row: int, col: int, value) -> None:
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet] if isinstance(sheet, str) else wb.worksheets[sheet]
    ws.cell(row=row, column=col, value=value)
    wb.save(path)


def _error(name, root, **options) -> AnnotationError:
    with pytest.raises(AnnotationError) as info:
        read_dataset(name, root, **options)
    err = info.value
    assert str(err).startswith(f"[{name}] ") and err.dataset == name
    return err


def test_missing_column_names_file_header_row_and_alternatives(tmp_path):
    root, _ = fx.write_samm_fixture(tmp_path)
    _edit_cell(root / SAMM_XLSX, 0, 14, 4, "Start")  # header is on row 14 (12 notes + a blank row)
    err = _error("samm", root)
    assert err.file.endswith(SAMM_XLSX) and err.row == 14
    assert "onset ('Onset Frame' / 'Onset')" in str(err) and "'Start'" in str(err)


def test_mmew_missing_column(tmp_path):
    root, _ = fx.write_mmew_fixture(tmp_path)
    _edit_cell(root / "MMEW_Micro_Exp.xlsx", 0, 1, 7, "Feeling")
    err = _error("mmew", root)
    assert err.row == 1 and "emotion" in str(err) and err.file.endswith("MMEW_Micro_Exp.xlsx")


def test_unexpected_columns_in_headerless_casme_sq_sheet(tmp_path):
    root, _ = fx.write_casme_sq_fixture(tmp_path)
    xlsx = root / "CAS(ME)^2code_final.xlsx"
    wb = openpyxl.load_workbook(xlsx)
    wb["CASFEcode_final"].insert_rows(1)
    for col, name in enumerate(["Subject", "Clip", "Onset", "Apex", "Offset", "AU", "Emotion", "Type", "Self"], 1):
        wb["CASFEcode_final"].cell(row=1, column=col, value=name)
    wb.save(xlsx)
    err = _error("casme_sq", root)
    assert err.row == 1 and "unexpected header row" in str(err)
    wb = openpyxl.load_workbook(xlsx)
    wb["CASFEcode_final"].delete_rows(1)
    wb["CASFEcode_final"].delete_cols(8, 2)
    wb.save(xlsx)
    assert "expected 9" in str(_error("casme_sq", root))


def test_unknown_subject_in_casme_sq_naming_sheet(tmp_path):
    root, _ = fx.write_casme_sq_fixture(tmp_path)
    _edit_cell(root / "CAS(ME)^2code_final.xlsx", "CASFEcode_final", 3, 1, 9)
    err = _error("casme_sq", root)
    assert err.row == 3 and "naming rule1" in str(err)


@pytest.mark.parametrize("name,filename,writer", [
    ("samm", SAMM_XLSX, fx.write_samm_fixture),
    ("mmew", "MMEW_Micro_Exp.xlsx", fx.write_mmew_fixture),
    ("casme3", "annotation/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", fx.write_casme3_fixture),
    ("casme_sq", "CAS(ME)^2code_final.xlsx", fx.write_casme_sq_fixture),
])
def test_unreadable_xlsx(tmp_path, name, filename, writer):
    root, _ = writer(tmp_path)
    (root / filename).write_bytes(b"this is not a zip archive")
    err = _error(name, root)
    assert "cannot read spreadsheet" in str(err) and err.file.endswith(Path(filename).name)


def test_legacy_xls_without_xlrd_explains_conversion(tmp_path, monkeypatch):
    root, _ = fx.write_casme_fixture(tmp_path, clips=fx.CASME_CLIPS[:1])
    folder = root / "CASME_A" / "Section A"
    (folder / "Section A.xlsx").rename(folder / "Section A.xls")
    monkeypatch.setattr(casme_reader, "_have_xlrd", lambda: False)
    err = _error("casme", root, parts="A")
    assert err.file.endswith("Section A.xls") and "xlrd" in str(err) and "convert" in str(err)


def test_missing_clip_folder_names_row(tmp_path):
    root, clips = fx.write_samm_fixture(tmp_path)
    shutil.rmtree(root / "SAMM" / "007" / "007_3_1")
    err = _error("samm", root)
    assert err.row == 17 and "007/007_3_1" in str(err) and err.file.endswith(SAMM_XLSX)


def test_empty_clip_folder_names_row(tmp_path):
    root, _ = fx.write_mmew_fixture(tmp_path)
    clip_dir = root / "Micro_Expression" / "surprise" / "S02-01-003"
    for f in clip_dir.iterdir():
        f.unlink()
    err = _error("mmew", root)
    assert err.row == 4 and "no image frames" in str(err) and err.file.endswith("MMEW_Micro_Exp.xlsx")


def test_frames_missing_from_clip_folder(tmp_path):
    root, _ = fx.write_casme_fixture(tmp_path)
    (root / "CASME_B" / "Section B" / "sub09" / "EP02_3" / "EP02_3-10.jpg").unlink()
    err = _error("casme", root)
    assert err.row == 3 and err.file.endswith("Section B.xlsx") and "outside the frames present" in str(err)


def test_long_video_frames_missing(tmp_path):
    root, _ = fx.write_casme3_fixture(tmp_path, n_frames=12)  # clip a_15 runs to frame 19
    err = _error("casme3", root)
    # issue 11: one mismatch message for every reader, naming both ranges
    assert err.row == 3 and re.search(r"onset\.\.offset \d+\.\.19 is outside the frames present", str(err))


def test_corrupt_jpeg_with_check_frames(tmp_path):
    root, _ = fx.write_samm_fixture(tmp_path)
    (root / "SAMM" / "006" / "006_1_3" / "006_00102.jpg").write_bytes(b"\xff\xd8 broken")
    assert len(read_dataset("samm", root)) == 5  # not decoded unless asked
    err = _error("samm", root, check_frames=True)
    assert err.row == 16 and "006_00102.jpg cannot be decoded" in str(err)


def test_corrupt_frame_in_smic(tmp_path):
    root, _ = fx.write_smic_fixture(tmp_path)
    (root / "HS" / "s2" / "micro" / "surprise" / "s2_sur_01" / "image000500.bmp").write_bytes(b"BM")
    err = _error("smic", root, check_frames=True)
    assert err.row == "s2_sur_01" and "cannot be decoded" in str(err)


@pytest.mark.parametrize("name,writer,clip_index,row", [
    ("samm", fx.write_samm_fixture, 1, 16),
    ("mmew", fx.write_mmew_fixture, 2, 4),
    ("casme3", fx.write_casme3_fixture, 2, 4),
])
def test_zero_length_clip(tmp_path, name, writer, clip_index, row):
    clips = [dict(c) for c in {"samm": fx.SAMM_CLIPS, "mmew": fx.MMEW_CLIPS, "casme3": fx.CASME3_CLIPS}[name]]
    clips[clip_index].update(apex=clips[clip_index]["onset"], offset=clips[clip_index]["onset"])
    clips[clip_index]["frames"] = [clips[clip_index]["onset"]] + ([] if name != "casme3" else list(range(25)))
    root, _ = writer(tmp_path, clips=clips)
    err = _error(name, root)
    assert err.row == row and "zero-length clip" in str(err)


def test_zero_length_smic_clip(tmp_path):
    clips = [dict(c) for c in fx.SMIC_CLIPS]
    clips[2]["offset"] = clips[2]["onset"]
    root, _ = fx.write_smic_fixture(tmp_path, clips=clips)
    err = _error("smic", root)
    assert err.row == "s2_sur_01" and "zero-length clip" in str(err)


@pytest.mark.parametrize("name,writer,clip_index,row", [
    ("samm", fx.write_samm_fixture, 2, 17),
    ("casme", fx.write_casme_fixture, 0, 2),
    ("casme_sq", fx.write_casme_sq_fixture, 2, 3),
    ("mmew", fx.write_mmew_fixture, 0, 2),
])
def test_apex_outside_onset_offset(tmp_path, name, writer, clip_index, row):
    clips = [dict(c) for c in {"samm": fx.SAMM_CLIPS, "casme": fx.CASME_CLIPS, "casme_sq": fx.CASME_SQ_CLIPS,
                               "mmew": fx.MMEW_CLIPS}[name]]
    clips[clip_index]["apex"] = clips[clip_index]["offset"] + 1
    root, _ = writer(tmp_path, clips=clips)
    err = _error(name, root)
    assert err.row == row and "is not within onset..offset" in str(err) and clips[clip_index]["clip"] in str(err)


def test_unexpected_smic_emotion_folder(tmp_path):
    root, _ = fx.write_smic_fixture(tmp_path)
    fx.write_frames(root / "HS" / "s1" / "micro" / "happy" / "s1_ha_01", [1, 2, 3])
    err = _error("smic", root)
    assert "unexpected emotion folder 'happy'" in str(err) and err.row == "s1_ha_01"


def test_missing_spreadsheet_and_unknown_dataset(tmp_path):
    err = _error("mmew", tmp_path)
    assert "MMEW_Micro_Exp" in str(err) and err.file == str(tmp_path)
    with pytest.raises(ValueError, match="Did you mean 'samm'"):
        read_dataset("sam", tmp_path)
