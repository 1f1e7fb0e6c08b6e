"""Every reader reads back a tiny fixture written in its dataset's official layout, and the fix table is applied."""

import logging
from pathlib import Path

import pandas as pd
import pytest

from kerasmer.data.readers.fixes import apply_fixes, load_fixes
from kerasmer.data.readers import list_datasets, read_dataset
from kerasmer.data.schema import COLUMNS, EXTRA_COLUMNS, AnnotationError
from tests.data import fixtures as fx

WRITERS = {
    "casme": (fx.write_casme_fixture, 60.0),
    "samm": (fx.write_samm_fixture, 200.0),
    "smic": (fx.write_smic_fixture, 100.0),
    "casme_sq": (fx.write_casme_sq_fixture, 30.0),
    "casme3": (fx.write_casme3_fixture, 30.0),
    "mmew": (fx.write_mmew_fixture, 90.0),
}


def _key(clip, name):
    subject = clip.get("subject")
    if name == "casme3":
        return subject, f"{clip['video']}_{clip['onset']}"
    return subject, clip["clip"]


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_fixture_reads_back(tmp_path, name):
    writer, fps = WRITERS[name]
    root, clips = writer(tmp_path / name)
    df = read_dataset(name, root)
    assert name in list_datasets()
    assert set(COLUMNS + EXTRA_COLUMNS) <= set(df.columns)
    expected = [c for c in clips if c.get("type", "micro-expression") == "micro-expression"]
    assert len(df) == len(expected)
    by_key = {(r.subject, r.clip): r for r in df.itertuples()}
    for clip in expected:
        row = by_key[_key(clip, name)]
        offset = clip["offset"] or clip["apex"]  # CAS(ME)² offset 0 is fixed to the apex
        assert (row.dataset, row.emotion, row.onset, row.offset) == (name, clip["emotion"].lower(),
                                                                     clip["onset"], offset)
        if clip.get("apex") is None:
            assert pd.isna(row.apex) and row.apex_missing
        else:
            assert row.apex == clip["apex"] and not row.apex_missing
        assert row.frame_numbers == list(range(clip["onset"], offset + 1))
        assert len(row.frame_paths) == len(row.frame_numbers)
        assert all(Path(p).is_file() and Path(p).is_absolute() for p in row.frame_paths)
        assert row.fps == fps
        assert ("row" in row.source) and str(root) in row.source
    assert df["apex"].dtype == "Int64"


def test_smic_modalities_and_fps(tmp_path):
    root, _ = fx.write_smic_fixture(tmp_path / "SMIC_all_raw", modality="NIR")
    fx.write_smic_fixture(tmp_path / "SMIC_all_raw", modality="HS", clips=fx.SMIC_CLIPS[:1])
    nir = read_dataset("smic", tmp_path, modality="NIR")  # root may hold SMIC_all_raw/
    hs = read_dataset("smic", root)
    assert (len(nir), len(hs)) == (len(fx.SMIC_CLIPS), 1)
    assert set(nir["fps"]) == {25.0} and set(hs["fps"]) == {100.0}
    assert nir["apex_missing"].all() and nir["apex"].isna().all()
    assert set(nir["modality"]) == {"NIR"}
    assert "non_micro" not in " ".join(sum(hs["frame_paths"], []))
    with pytest.raises(AnnotationError, match=r"\[smic\].*VIS folder"):
        read_dataset("smic", root, modality="VIS")


def test_samm_header_found_below_any_preamble(tmp_path):
    for preamble in (3, 20):
        root, clips = fx.write_samm_fixture(tmp_path / f"p{preamble}", preamble=preamble)
        df = read_dataset("samm", root)
        assert list(df["clip"]) == [c["clip"] for c in clips]
        assert list(df["subject"]) == [c["subject"] for c in clips]
        assert list(df["objective_class"]) == ["I", "II", "VI", "VII", "III"]


def test_casme_sq_expression_option_and_name_maps(tmp_path):
    root, clips = fx.write_casme_sq_fixture(tmp_path / "CASME_sq")
    micro = read_dataset("casme_sq", root)
    macro = read_dataset("casme_sq", root, expression="macro")
    both = read_dataset("casme_sq", root, expression="all")
    assert set(micro["expression_type"]) == {"micro-expression"}
    assert list(macro["clip"]) == ["disgust1_2"] and len(both) == len(clips)
    row = micro.set_index("clip").loc["disgust1_1"]
    assert row["subject"] == "s15" and row["video"] == "15_0101disgustingteeth"
    assert row["self_report"] == "disgust"
    assert Path(row["frame_paths"][0]).name == "img5.jpg"


def test_casme_parts_option(tmp_path):
    root, _ = fx.write_casme_fixture(tmp_path / "CASME")
    a = read_dataset("casme", root, parts="A")
    both = read_dataset("casme", root)
    assert set(a["part"]) == {"A"} and set(both["part"]) == {"A", "B"}
    assert sorted(both["subject"]) == ["01", "02", "08", "09"]


# ----------------------------------------------------------------- fixes


def test_casme3_known_errors_are_fixed_and_logged(tmp_path, caplog):
    root, _ = fx.write_casme3_fixture(tmp_path / "CASME3", clips=fx.CASME3_CLIPS + fx.CASME3_KNOWN_ERRORS)
    with caplog.at_level(logging.INFO, logger="kerasmer.data"):
        df = read_dataset("casme3", root)
    fixed = df[df["subject"] == "spNO.216"].set_index("video")
    assert (fixed.loc["d", "onset"], fixed.loc["d", "apex"], fixed.loc["d", "offset"]) == (2647, 2668, 2694)
    assert (fixed.loc["e", "onset"], fixed.loc["e", "apex"]) == (1, 1)
    assert fixed.loc["d", "clip"] == "d_2647"
    assert "onset 3647->2647" in fixed.loc["d", "fixes"]
    assert (df[df["subject"] != "spNO.216"]["fixes"] == "").all()
    logs = [r.getMessage() for r in caplog.records if r.name == "kerasmer.data" and "fixed" in r.getMessage()]
    assert len(logs) == 3 and any("spNO.216/d" in m and "3647 -> 2647" in m for m in logs)
    assert len(df.attrs["fixes_applied"]) == 3
    with pytest.raises(AnnotationError, match=r"\[casme3\].*row 6.*onset 3647 is after offset 2694"):
        read_dataset("casme3", root, fixes=False)


def test_casme_sq_offset_zero_fixed_to_apex(tmp_path, caplog):
    root, _ = fx.write_casme_sq_fixture(tmp_path / "CASME_sq")
    with caplog.at_level(logging.INFO, logger="kerasmer.data"):
        df = read_dataset("casme_sq", root)
    assert df.set_index("clip").loc["anger1_1", "offset"] == 10
    assert any("offset 0 -> 10" in r.getMessage() for r in caplog.records)
    with pytest.raises(AnnotationError, match=r"\[casme_sq\].*row 4.*onset 8 is after offset 0"):
        read_dataset("casme_sq", root, fixes=False)


def test_samm_row_keyed_fix_applies_only_to_an_invalid_row(tmp_path, caplog):
    bad = dict(subject="020", clip="020_4_1", emotion="Fear", onset=5730, apex=5735, offset=5733,
               frames=range(5730, 5740))
    fillers = fx.filler_clips(56, subject="006", prefix="006_9_", emotion="Happiness")
    root, _ = fx.write_samm_fixture(tmp_path / "bad", clips=fillers + [bad])  # bad clip on row 71
    with caplog.at_level(logging.INFO, logger="kerasmer.data"):
        df = read_dataset("samm", root)
    assert df.set_index("clip").loc["020_4_1", "offset"] == 5739
    assert sum("fixed" in r.getMessage() for r in caplog.records) == 1
    good = dict(bad, offset=5738)  # a corrected release: the guard keeps the row as it is
    root, _ = fx.write_samm_fixture(tmp_path / "good", clips=fillers + [good])
    df = read_dataset("samm", root)
    assert df.set_index("clip").loc["020_4_1", "offset"] == 5738 and df.attrs["fixes_applied"] == []


def test_mmew_apex_and_offset_fixed_together(tmp_path):
    bad = dict(subject="S09", clip="S09-01-001", emotion="fear", onset=10, apex=80, offset=50,
               frames=range(10, 81))
    root, _ = fx.write_mmew_fixture(tmp_path / "MMEW", clips=fx.filler_clips(
        33, subject="S01", prefix="S01-01-", emotion="happiness") + [bad])  # bad clip on row 35
    row = read_dataset("mmew", root).set_index("clip").loc["S09-01-001"]
    assert (row["apex"], row["offset"]) == (40, 75)
    assert row["frame_numbers"] == list(range(10, 81))  # clip folders are listed whole, as in CASME II


def test_user_fix_table_and_drop_option(tmp_path):
    clips = [dict(fx.CASME_CLIPS[0], apex=9), dict(fx.CASME_CLIPS[1], offset=11), fx.CASME_CLIPS[2]]
    clips[1]["frames"] = range(10, 14)
    root, _ = fx.write_casme_fixture(tmp_path / "CASME", clips=clips)
    with pytest.raises(AnnotationError, match=r"\[casme\].*Section A\.xlsx, row 2.*apex 9 is not within"):
        read_dataset("casme", root)
    table = pd.DataFrame([dict(dataset="casme", file="Section A.xls*", row="", subject="01", clip="EP01_5",
                               field="apex", when="invalid", value="4", reason="typo", source="test")])
    with pytest.warns(UserWarning) as caught:
        df = read_dataset("casme", root, fixes=table, errors="drop")
    assert any("dropped 1 invalid row" in str(w.message) for w in caught)
    assert list(df["clip"]) == ["EP01_5", "EP01_12"]
    assert df.set_index("clip").loc["EP01_5", "apex"] == 4
    assert len(df.attrs["dropped"]) == 1 and "row 3" in df.attrs["dropped"][0]
    assert any("skipping row" in str(w.message) and "02/EP03_1" in str(w.message) for w in caught)


def test_packaged_fix_table_is_well_formed():
    table = load_fixes()
    assert set(table["dataset"]) <= set(list_datasets())
    assert (table["reason"] != "").all() and (table["source"] != "").all()
    with pytest.raises(ValueError, match="field must be one of"):
        load_fixes(table.assign(field="duration"))
    with pytest.raises(ValueError, match="row, or a subject and a clip"):
        load_fixes(table.head(1).assign(row="", subject="", clip=""))


def test_apply_fixes_guards():
    t = pd.DataFrame({"On": [10, 10, 10], "Ap": ["/", 12, -1], "Off": [20, 20, 20]}, index=[2, 3, 4])
    fx_table = pd.DataFrame([dict(dataset="x", file="*.xlsx", row="*", subject="", clip="", field="apex",
                                  when="missing", value="15", reason="r", source="s")])
    cols = {"onset": "On", "apex": "Ap", "offset": "Off"}
    fixed, applied = apply_fixes(t, dataset="x", file="a.xlsx", columns=cols, fixes=fx_table)
    assert list(fixed["Ap"]) == [15, 12, 15] and [a["row"] for a in applied] == [2, 4]
    untouched, none = apply_fixes(t, dataset="x", file="a.csv", columns=cols, fixes=fx_table)
    assert none == [] and list(untouched["Ap"]) == ["/", 12, -1]


def test_packaged_casme2_entries_are_keyed_by_clip_not_row(tmp_path, caplog):
    """Issue 11 finding 2: a '/' apex on row 31 of another clip (a sorted copy, the synthetic set) stays
    missing; the entry lands on sub04/EP12_01f wherever it sits, and only while its guard ('/') holds.
    (Before issue 11 this test asserted the opposite: row 31 of any file got apex 279.)"""
    from kerasmer.data.readers import casme2
    from kerasmer.data.readers._common import read_xlsx

    other = dict(subject="05", clip="EP12_03f", emotion="disgust", onset=250, apex=None, offset=300,
                 frames=[250, 300])
    target = dict(subject="04", clip="EP12_01f", emotion="others", onset=200, apex=None, offset=400)
    fillers = fx.filler_clips(29, subject="01", prefix="EP0", emotion="others")
    root, _ = fx.write_casme2_fixture(tmp_path, clips=fillers + [other, target])
    xlsx = root / "CASME2-coding-20140508.xlsx"
    table = read_xlsx(xlsx, dataset="casme2")
    assert table.loc[31, "ApexFrame"] == "/" and table.loc[32, "Filename"] == "EP12_01f"
    fixed, applied = apply_fixes(table, dataset="casme2", file=xlsx, columns=casme2.COLUMNS,
                                 ident=lambda r: (f"{int(r['Subject']):02d}", r["Filename"]))
    assert fixed.loc[31, "ApexFrame"] == "/" and fixed.loc[32, "ApexFrame"] == 279
    assert [(a["row"], a["subject"], a["clip"]) for a in applied] == [(32, "04", "EP12_01f")]
    table.loc[32, "ApexFrame"] = 300  # a corrected copy: the guard ('/') fails, logged, no fix
    with caplog.at_level(logging.WARNING, logger="kerasmer.data"):
        fixed, applied = apply_fixes(table, dataset="casme2", file=xlsx, columns=casme2.COLUMNS,
                                     ident=lambda r: (f"{int(r['Subject']):02d}", r["Filename"]))
    assert applied == [] and fixed.loc[32, "ApexFrame"] == 300
    assert any("guard does not match" in r.getMessage() and "04/EP12_01f" in r.getMessage()
               for r in caplog.records)
