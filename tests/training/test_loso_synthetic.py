"""The foundation slice learns: LEARNet + LOSO on the synthetic set is clearly above chance.

If this fails, either the synthetic data or the model is wrong (the issue's acceptance check,
shrunk to CI size: 4 subjects, 64x64 dynamic images).
"""

import numpy as np

from kerasmer.data import make_synthetic, read_dataset
from kerasmer.training.loso import run_loso


def test_learnet_loso_above_chance_and_honest(tmp_path):
    df = read_dataset("casme2", make_synthetic(tmp_path, subjects=4, clips_per_class=3, seed=1))
    classes = sorted(df["emotion"].unique())
    result, _ = run_loso(df, model_name="learnet", class_names=classes, input_shape=(64, 64, 3),
                         epochs=20, batch_size=8, optimizer="adam", learning_rate=1e-3, seed=0, progress=False)
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
