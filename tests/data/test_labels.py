"""Label schemes and the MEGC 2019 composite: counts kept and dropped."""

import pandas as pd
import pytest

from kerasmer.data.readers.labels import composite, map_labels
from kerasmer.data.readers import read_dataset
from tests.data import fixtures as fx


def _frame(dataset, emotions, objective=None):
    df = pd.DataFrame({"dataset": dataset, "subject": "01", "emotion": emotions})
    if objective is not None:
        df["objective_class"] = objective
    return df


def test_megc3_counts_per_dataset():
    df = pd.concat([
        _frame("casme2", ["happiness", "disgust", "repression", "surprise", "others", "fear", "sadness"]),
        _frame("samm", ["anger", "contempt", "disgust", "fear", "sadness", "happiness", "surprise", "other"]),
        _frame("smic", ["negative", "positive", "surprise", "negative"]),
    ], ignore_index=True)
    mapped, summary = map_labels(df, "megc3")
    assert summary["classes"] == {"negative": 9, "positive": 3, "surprise": 3}
    assert list(summary["classes"]) == ["negative", "positive", "surprise"]
    assert summary["per_dataset"]["samm"] == {"negative": 5, "positive": 1, "surprise": 1}
    assert summary["dropped_labels"] == {"casme2": {"fear": 1, "others": 1, "sadness": 1}, "samm": {"other": 1}}
    assert (summary["kept"], summary["dropped"]) == (15, 4) and len(mapped) == 15
    assert list(mapped.columns[:3]) == ["dataset", "subject", "emotion"]  # emotion kept as it was
    assert mapped.loc[mapped["emotion"] == "repression", "label"].tolist() == ["negative"]


def test_casme2_5class_drops_fear_and_sadness():
    df = _frame("casme2", ["happiness", "disgust", "disgust", "repression", "surprise", "others", "fear",
                           "sadness", "sadness"])
    mapped, summary = map_labels(df, "casme2_5class")
    assert summary["classes"] == {"happiness": 1, "disgust": 2, "repression": 1, "surprise": 1, "others": 1}
    assert summary["dropped_labels"] == {"casme2": {"fear": 1, "sadness": 2}}
    assert (mapped["label"] == mapped["emotion"]).all()


def test_raw_and_objective_schemes():
    df = _frame("samm", ["anger", "", "other"], objective=["II", "I", ""])
    raw, raw_summary = map_labels(df, "raw")
    assert list(raw["label"]) == ["anger", "other"] and raw_summary["dropped_labels"] == {"samm": {"<empty>": 1}}
    obj, obj_summary = map_labels(df, "objective")
    assert list(obj["label"]) == ["II", "I"] and obj_summary["dropped"] == 1
    with pytest.raises(ValueError, match="objective_class"):
        map_labels(_frame("smic", ["negative"]), "objective")


def test_user_dicts_flat_and_per_dataset():
    df = pd.concat([_frame("samm", ["Anger", "happiness"]), _frame("smic", ["negative"])], ignore_index=True)
    flat, summary = map_labels(df, {"anger": "neg", "negative": "neg"})
    assert list(flat["label"]) == ["neg", "neg"] and summary["scheme"] == "custom"
    nested, summary = map_labels(df, {"samm": {"happiness": "pos"}, "*": {"negative": "neg"}})
    assert list(nested["label"]) == ["pos", "neg"]
    assert summary["dropped_labels"] == {"samm": {"Anger": 1}}
    with pytest.raises(ValueError, match="unknown label scheme"):
        map_labels(df, "megc5")


def test_objective_scheme_on_read_datasets(tmp_path):
    root, clips = fx.write_casme3_fixture(tmp_path / "CASME3")
    mapped, summary = map_labels(read_dataset("casme3", root), "objective")
    assert summary["classes"] == {"I": 1, "II": 1, "VI": 1, "VII": 1}


def test_megc_composite_prefixes_subjects(tmp_path):
    roots = {"casme2": fx.write_casme2_fixture(tmp_path / "CASME2")[0],
             "samm": fx.write_samm_fixture(tmp_path / "SAMM")[0],
             "smic": fx.write_smic_fixture(tmp_path / "SMIC", clips=fx.SMIC_CLIPS + [
                 dict(subject="s01", clip="s01_po_09", emotion="positive", onset=1, offset=3)])[0]}
    df, summary = composite(["casme2", "samm", "smic"], roots, scheme="megc3")
    assert summary["read"] == {"casme2": 7, "samm": 5, "smic": 5}
    assert summary["per_dataset"] == {"casme2": {"negative": 2, "positive": 1, "surprise": 1},
                                      "samm": {"negative": 2, "positive": 1, "surprise": 1},
                                      "smic": {"negative": 2, "positive": 2, "surprise": 1}}
    assert set(df["dataset"]) == {"casme2", "samm", "smic"}
    assert {"casme2_01", "samm_006", "smic_s3", "smic_s1", "smic_s01"} <= set(df["subject"])
    assert all(s.startswith(d + "_") for s, d in zip(df["subject"], df["dataset"]))
    assert (df["subject"] == df["dataset"] + "_" + df["dataset_subject"]).all()
    assert set(df["label"]) == {"negative", "positive", "surprise"}
    same, _ = composite(["casme2", "samm", "smic"], [roots["casme2"], roots["samm"], roots["smic"]],
                        options={"smic": {"modality": "HS"}})
    assert len(same) == len(df)
    with pytest.raises(ValueError, match="no root given"):
        composite(["casme2", "samm"], {"casme2": roots["casme2"]})
