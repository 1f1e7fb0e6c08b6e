"""The foundation slice learns: LEARNet + LOSO on the synthetic set beats the trivial baselines on the same folds.

If this fails, either the synthetic data or the model is wrong (the issue's acceptance check, shrunk to CI
size: 4 subjects, 64x64 dynamic images).  The floor is not a fixed number but the best of the trivial
baselines (``kerasmer.evaluation.baselines``) on the same folds and test clips, computed by the run itself:
a model that only reads appearance (the apex frame) cannot clear it, because a linear model on
|apex - onset| already scores what appearance gives and more (issue 12).
"""

import numpy as np

from kerasmer.data import make_synthetic, read_dataset
from kerasmer.training import RunConfig, run


# How far the model must clear the best baseline's pooled UF1.  Measured on this set (36 clips, 4 folds, data seed
# 3; 2 loaded CPU cores): LEARNet 0.918, 0.810 and 0.861 with training seeds 0, 1, 2; best baseline, logistic
# regression on |apex - onset|, 0.694; on the apex frame 0.269; majority 0.167.  The same LEARNet fed the apex
# frame alone (its dynamic-image builder swapped for the frame builder) scored 0.231.  One clip is ~0.03 of UF1
# here: 0.05 asks for about two clips more than the best linear model, and the worst measured seed still clears
# it by two more (0.810 vs 0.744), while an appearance-only model stays ~0.5 below the bar.
MARGIN = 0.05


def test_learnet_loso_beats_the_baselines_and_is_honest(tmp_path):
    root = make_synthetic(tmp_path / "data", subjects=4, clips_per_class=3, seed=3)
    df = read_dataset("casme2", root)
    config = RunConfig(model="learnet", data={"casme2": str(root)}, recipe="quickstart",
                       recipe_overrides={"epochs": 20, "batch_size": 8}, input_shape=[64, 64, 3], seed=0,
                       output_dir=str(tmp_path / "run"), deterministic=False)
    result = run(config, progress=False, log=lambda s: None)
    assert len(result.folds) == 4
    for f in result.folds:
        # the test subject is never trained on nor used to choose the epoch
        assert f.test_subjects == [f.name]
        assert f.name not in f.train_subjects and f.name not in f.val_subjects
        assert not set(f.val_subjects) & set(f.train_subjects)
        assert 1 <= f.evaluated_epoch <= f.epochs_run
        assert np.argmin(f.history["val_loss"]) + 1 == f.evaluated_epoch
    preds = result.predictions_frame()
    assert len(preds) == len(df) and set(preds["clip"]) == set(df["clip"])
    # the baselines were scored on exactly the model's folds and test clips
    assert set(result.baselines) == {"majority", "apex_frame_lr", "apex_onset_diff_lr"}
    for scores in result.baselines.values():
        assert list(scores["folds"]) == [f.name for f in result.folds] and scores["n"] == len(df)
    best = max(scores["uf1"] for scores in result.baselines.values())
    assert result.pooled["uf1"] >= best + MARGIN, result.fold_table() + "\n" + result.floor_table("learnet")
