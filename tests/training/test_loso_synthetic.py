"""The foundation slice learns: LEARNet + LOSO on the synthetic set is clearly above chance.

If this fails, either the synthetic data or the model is wrong (the issue's acceptance check,
shrunk to CI size: 4 subjects, 64x64 dynamic images).
"""

import numpy as np

from kerasmer.data import make_synthetic, read_dataset
from kerasmer.training import RunConfig, run


def test_learnet_loso_above_chance_and_honest(tmp_path):
    root = make_synthetic(tmp_path / "data", subjects=4, clips_per_class=3, seed=1)
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
    assert result.pooled["uf1"] >= 0.6, result.fold_table()
