"""Issue 11, "real releases as they are": annotation versus frames, the fix table's keys, frame integrity."""

import logging
import re

import pandas as pd
import pytest

from kerasmer.data import FrameError, preflight, read_dataset
from kerasmer.data.pipeline.inputs import decode_frame, load_clip
from kerasmer.data.schema import AnnotationError
from tests.data import fixtures as fx


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    root, clips = fx.write_casme2_fixture(tmp_path_factory.mktemp("official") / "CASME2", fx.official_casme2_clips())
    return root, clips


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ----------------------------------------------------------------- finding 1 / deliverable 1-2


def test_official_layout_reads_every_clip_with_the_fix_table(official, caplog):
    root, clips = official
    with caplog.at_level(logging.INFO, logger="kerasmer.data"):
        df = read_dataset("casme2", root)
    assert len(df) == len(clips) == 24
    got = df.set_index(df["subject"] + "/" + df["clip"])
    # overlapping: clamped to the frames present; sub07/EP06_01 also gets MEB's apex and offset first
    assert tuple(got.loc["12/EP09_06", ["onset", "offset"]]) == (66, 106) and got.loc["12/EP09_06", "apex"] == 80
    assert tuple(got.loc["16/EP01_08", ["onset", "offset"]]) == (73, 96)
    assert tuple(got.loc["20/EP16_01", ["onset", "apex", "offset"]]) == (71, 103, 106)
    assert tuple(got.loc["24/EP02_07", ["onset", "apex", "offset"]]) == (61, 64, 66)
    assert tuple(got.loc["07/EP06_01", ["onset", "apex", "offset"]]) == (56, 78, 91)
    # no overlap: the folder's frames define the clip, the apex becomes missing
    row = got.loc["12/EP09_02"]
    assert (row["onset"], row["offset"], bool(row["apex_missing"])) == (161, 206, True)
    assert "frames 16..101->161..206" in row["fixes"] and "apex 89->missing" in row["fixes"]
    assert got.loc["04/EP12_01f", "apex"] == 279 and not got.loc["04/EP12_01f", "apex_missing"]
    assert len(df.attrs["mismatch"]["changed"]) == 6 and df.attrs["mismatch"]["dropped"] == []


def test_a_reordered_copy_of_the_official_sheet_gets_the_same_fixes(official, tmp_path):
    """Finding 2: entries follow the clip, not the row, in a sorted or filtered copy."""
    root, _ = official
    reordered, _ = fx.write_casme2_fixture(tmp_path / "rev", fx.official_casme2_clips()[::-1][:20])
    a, b = (d.set_index(d["subject"] + "/" + d["clip"]) for d in (read_dataset("casme2", root),
                                                                   read_dataset("casme2", reordered)))
    cols = ["onset", "apex", "offset", "apex_missing"]
    assert a.loc[b.index, cols].astype(str).equals(b[cols].astype(str))
    assert b.loc["12/EP08_07", "apex"] == 187 and b.loc["12/EP08_07", "source"].endswith("row 18")


def test_mismatch_without_a_fix_raises_naming_file_row_clip_and_ranges(official):
    root, _ = official
    with pytest.raises(AnnotationError) as err:
        read_dataset("casme2", root, fixes=False)
    msg = str(err.value)  # the first mismatched row in sheet order: sub07/EP06_01 on row 8
    assert "CASME2-coding-20140508.xlsx, row 8" in msg and "clip 07/EP06_01" in msg
    assert "15..68" in msg and "56..91" in msg and "on_mismatch='clip'" in msg


def test_clip_and_drop_policies(official):
    root, _ = official
    with pytest.warns(UserWarning, match=r"clip 12/EP09_06 frames 66\.\.111->66\.\.106 \(on_mismatch=clip\)"):
        clipped = read_dataset("casme2", root, fixes=False, on_mismatch="clip")
    got = clipped.set_index(clipped["subject"] + "/" + clipped["clip"])
    assert tuple(got.loc["12/EP09_06", ["onset", "offset"]]) == (66, 106)
    assert tuple(got.loc["12/EP09_02", ["onset", "offset"]]) == (161, 206)
    assert len(clipped.attrs["mismatch"]["changed"]) == 6 and clipped.attrs["mismatch"]["policy"] == "clip"
    with pytest.warns(UserWarning, match=r"0 clip\(s\) clamped to their frames, 6 dropped"):
        dropped = read_dataset("casme2", root, fixes=False, on_mismatch="drop")
    assert len(dropped) == 18 and "12/EP09_06" not in set(dropped["subject"] + "/" + dropped["clip"])
    assert len(dropped.attrs["mismatch"]["dropped"]) == 6
    with pytest.raises(ValueError, match="on_mismatch must be one of"):
        read_dataset("casme2", root, on_mismatch="ignore")


def test_frames_guard_that_does_not_match_is_logged_and_not_applied(tmp_path, caplog):
    clips = fx.official_casme2_clips()
    for c in clips:  # another copy of the release: sub12/EP09_06's folder ends at 100, not 106
        if (c["subject"], c["clip"]) == ("12", "EP09_06"):
            c["frames"] = list(range(66, 101))
    root, _ = fx.write_casme2_fixture(tmp_path / "CASME2", clips)
    with caplog.at_level(logging.WARNING, logger="kerasmer.data"), pytest.raises(AnnotationError, match="12/EP09_06"):
        read_dataset("casme2", root)
    assert any("frames entry not applied" in r.getMessage() and "12/EP09_06" in r.getMessage()
               for r in caplog.records)


def test_every_reader_takes_on_mismatch(tmp_path):
    samm = [dict(c) for c in fx.SAMM_CLIPS]
    samm[0]["frames"] = range(5562, 5565)  # 006_1_2 annotated 5562..5566
    root, _ = fx.write_samm_fixture(tmp_path / "SAMM", samm)
    with pytest.raises(AnnotationError, match=r"006/006_1_2.*5562\.\.5566 is outside the frames present 5562\.\.5564"):
        read_dataset("samm", root)
    with pytest.warns(UserWarning):
        df = read_dataset("samm", root, on_mismatch="clip")
    assert df.set_index("clip").loc["006_1_2", "offset"] == 5564
    smic, _ = fx.write_smic_fixture(tmp_path / "SMIC")
    assert read_dataset("smic", smic, on_mismatch="drop").attrs["mismatch"]["dropped"] == []


# ----------------------------------------------------------------- finding 3: a frame missing inside


def test_missing_frame_inside_the_clip_is_never_dropped_silently(tmp_path):
    clips = [dict(fx.CASME2_CLIPS[0], frames=[n for n in range(46, 63) if n != 50])]
    root, _ = fx.write_casme2_fixture(tmp_path / "gap", clips)
    with pytest.raises(AnnotationError, match=r"row 2: clip 01/EP02_01f: annotated onset\.\.offset 46\.\.62 misses "
                                              r"frame\(s\) 50\.\.50"):
        read_dataset("casme2", root)
    whole, _ = fx.write_casme2_fixture(tmp_path / "whole", fx.CASME2_CLIPS[:1])
    row = read_dataset("casme2", whole).iloc[0]
    (whole / "CASME2-RAW" / "sub01" / "EP02_01f" / "img50.jpg").unlink()  # gone after reading
    with pytest.raises(AnnotationError, match=r"cannot read image|not among the clip's frames"):
        load_clip(row)
    gappy = dict(row, frame_numbers=[n for n in row["frame_numbers"] if n != 50],
                 frame_paths=[p for p in row["frame_paths"] if not p.endswith("img50.jpg")])
    with pytest.raises(AnnotationError, match=r"frame number\(s\) \[50\] not among"):
        load_clip(gappy)  # before issue 11: 16 of 17 frames, silently
    with pytest.raises(FrameError, match=r"frame 50: not in the clip folder; clip 01/EP02_01f"):
        preflight(pd.DataFrame([gappy]))


# ----------------------------------------------------------------- finding 4: a truncated JPEG


def test_truncated_jpeg_fails_check_frames_decode_and_preflight(tmp_path):
    root, _ = fx.write_casme2_fixture(tmp_path / "C", [dict(fx.CASME2_CLIPS[0])])
    bad = root / "CASME2-RAW" / "sub01" / "EP02_01f" / "img59.jpg"  # the apex frame
    fx.write_frames(bad.parent, [59], size=64)
    _truncate(bad)
    df = read_dataset("casme2", root)  # the layout is fine
    with pytest.raises(AnnotationError, match=r"row 2: frame .*img59\.jpg cannot be decoded .*truncated JPEG"):
        read_dataset("casme2", root, check_frames=True)
    with pytest.raises(AnnotationError, match=r"truncated JPEG: no end-of-image marker FF D9"):
        decode_frame(str(bad))
    with pytest.raises(FrameError) as err:
        preflight(df)
    line, = err.value.lines
    assert re.search(r"img59\.jpg: truncated JPEG.*clip 01/EP02_01f .*CASME2-coding-20140508\.xlsx:row 2", line)


def test_truncated_png_and_bmp_fail_preflight(tmp_path):
    rows = []
    for ext in ("png", "bmp"):
        folder = tmp_path / ext
        paths = fx.write_frames(folder, [1, 2, 3], pattern="f{n}." + ext, size=32)
        _truncate(paths[1], keep=0.9)
        rows.append(dict(dataset="x", subject="s", clip=ext, onset=1, offset=3, source=f"x.xlsx:row {len(rows) + 2}",
                         frame_paths=[str(p) for p in paths], frame_numbers=[1, 2, 3]))
    with pytest.raises(FrameError) as err:
        preflight(pd.DataFrame(rows))
    assert len(err.value.lines) == 2
    assert "f2.png: truncated PNG" in err.value.lines[0] and "f2.bmp: truncated BMP" in err.value.lines[1]


def test_preflight_verdict_is_cached(tmp_path):
    root, _ = fx.write_casme2_fixture(tmp_path / "own", fx.official_casme2_clips())  # it damages a frame
    df = read_dataset("casme2", root)
    first = preflight(df, cache_dir=tmp_path / "cache")
    assert first["cached"] is False and first["frames"] == sum(int(o) - int(s) + 1 for s, o in
                                                               zip(df["onset"], df["offset"]))
    assert preflight(df, cache_dir=tmp_path / "cache")["cached"] is True
    victim = df.iloc[0]["frame_paths"][1]
    _truncate(fx.Path(victim))  # a changed file changes the key: checked again, and fails
    with pytest.raises(FrameError, match=re.escape(victim)):
        preflight(df, cache_dir=tmp_path / "cache")


# ----------------------------------------------------------------- the acceptance check: a run on the official layout


def test_kerasmer_train_starts_on_the_official_layout(official, tmp_path, capsys):
    import json

    from kerasmer.cli.main import main

    root, _ = official
    out = tmp_path / "run"
    assert main(["train", "--data", f"casme2={root}", "--model", "learnet", "--recipe", "learnet", "--epochs", "1",
                 "--batch-size", "8", "--input-shape", "32,32,3", "--no-deterministic", "--folds", "04",
                 "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["annotation"]["on_mismatch"] == "fix" and run["annotation"]["preflight"]["clips"] == 24
    assert len(run["annotation"]["mismatch"]["casme2"]["changed"]) == 6
    assert json.loads((out / "config.json").read_text())["on_mismatch"] == "fix"
    assert list((out / "folds").glob("*/result.json"))  # the fold trained and was evaluated
    report = (out / "report.md").read_text()
    assert "## Annotation versus frames" in report and "casme2: 12/EP09_02: frames 16..101->161..206" in report


def test_on_mismatch_reaches_run_config_from_the_command_line():
    import argparse

    from kerasmer.cli.train import add_train_parser, config_from_args
    from kerasmer.training.config import RunConfig

    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["train", "--data", "casme2=/x", "--on-mismatch", "drop"])
    assert config_from_args(args).on_mismatch == "drop"
    assert RunConfig().on_mismatch == "fix"
    with pytest.raises(ValueError, match="on_mismatch must be one of fix, clip, drop"):
        RunConfig(on_mismatch="ignore")
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--on-mismatch", "ignore"])


def test_a_damaged_test_subject_frame_stops_the_run_before_any_model_is_built(tmp_path):
    """Finding 5: the preflight covers every clip of the run, test subjects included."""
    from kerasmer.cli.main import main

    root, _ = fx.write_casme2_fixture(tmp_path / "C", fx.official_casme2_clips())
    victim = root / "CASME2-RAW" / "sub25" / "EP12_01" / "img97.jpg"  # fold 25's test subject
    fx.write_frames(victim.parent, [97], size=64)
    _truncate(victim)
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=r"img97\.jpg: truncated JPEG.*clip 25/EP12_01 .*row 25"):
        main(["train", "--data", f"casme2={root}", "--model", "learnet", "--epochs", "1", "--input-shape",
              "32,32,3", "--folds", "25", "--out", str(out)])  # sub25 is this fold's test subject
    assert not (out / "folds").exists() and not (out / "run.json").exists()
