"""What a reader sees is clean: progress that suits its stream, quiet TensorFlow logs, no retracing within a fold."""

import io
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np

from kerasmer.evaluation import loso_folds
from kerasmer.training import FoldTrainer, TrainSpec, get_recipe
from kerasmer.training.callbacks import EpochProgress, FoldProgress, interactive_output, quiet_tf_logs

from .conftest import SHAPE

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[|\x08")  # colour codes and the backspaces Keras redraws its bar with


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_interactive_output_follows_the_stream():
    assert interactive_output(_Terminal()) and not interactive_output(io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not interactive_output(closed)
    assert not interactive_output(object())  # no isatty at all


def _tiny_fit(callbacks, verbose=1):
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = keras.utils.to_categorical(np.arange(8) % 2, 2)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    model.fit(x, y, batch_size=4, epochs=1, verbose=verbose, callbacks=callbacks, validation_data=(x, y))


def test_epoch_progress_prints_plain_lines_off_a_terminal(capsys):
    plain = EpochProgress("07", 30, stream=io.StringIO())
    _tiny_fit([plain])
    out = capsys.readouterr().out
    assert plain.verbose == 2
    assert "fold 07 · epoch 1/30" in out and "loss:" in out and "val_loss:" in out
    assert not ANSI.search(out), repr(out)
    bar = EpochProgress("07", 30, stream=_Terminal())
    _tiny_fit([bar])
    assert bar.verbose == 1 and ANSI.search(capsys.readouterr().out)  # a terminal keeps Keras' bar


def test_fold_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(capsys):
    out = io.StringIO()
    progress = FoldProgress(3, stream=out)
    assert progress.bar is None
    for done, name in enumerate(("01", "02", "03"), start=1):
        progress.update(done, name, 0.25 * done)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[1].startswith("fold 2/3 (02) done") and "pooled UF1 so far 0.500" in lines[1]
    assert "ETA 0 s" in lines[2] and not ANSI.search(out.getvalue())
    assert FoldProgress(3, stream=_Terminal()).bar is not None


def test_quiet_tf_logs_hides_only_the_expected_records_and_only_inside():
    tf_logger = logging.getLogger("tensorflow")
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    old_level = tf_logger.level
    tf_logger.addHandler(handler)
    tf_logger.setLevel(logging.INFO)
    retrace = ("5 out of the last 13 calls to <function TensorFlowTrainer._make_function.<locals>."
               "multi_step_on_iterator at 0x7f> triggered tf.function retracing. ... reduce_retracing=True ...")
    user_retrace = "5 out of the last 5 calls to <function my_step at 0x7f> triggered tf.function retracing."
    try:
        with quiet_tf_logs():
            tf_logger.info("Assets written to: /tmp/x/.tmp-1-abc/assets")
            tf_logger.warning(retrace)
            tf_logger.warning(user_retrace)  # a user's own function: their warning to see
            tf_logger.warning("something else")
        tf_logger.info("after the block")
    finally:
        tf_logger.removeHandler(handler)
        tf_logger.setLevel(old_level)
    assert seen == [user_retrace, "something else", "after the block"]


def _traces(fn) -> int:
    """How often a Keras train/test/predict function was traced (the tf.function may sit in a wrapper's closure)."""
    if hasattr(fn, "experimental_get_tracing_count"):
        return fn.experimental_get_tracing_count()
    return sum(c.cell_contents.experimental_get_tracing_count() for c in fn.__closure__ or ()
               if hasattr(c.cell_contents, "experimental_get_tracing_count"))


def test_a_fold_traces_each_keras_function_once(synthetic_df):
    """Epochs are separate fit calls on fresh pipelines, and the test part ends with a partial batch: no retrace."""
    names = sorted(synthetic_df["emotion"].unique())
    fold = loso_folds(synthetic_df, seed=0)[0]
    batch = 4
    assert len(fold.test) % batch and len(fold.val) % batch  # partial last batches, the case that used to retrace
    spec = TrainSpec("learnet", names, get_recipe("shallow", epochs=3, batch_size=batch, early_stopping_patience=None),
                     input_shape=SHAPE)
    model, result = FoldTrainer(spec, log=lambda s: None).train(synthetic_df, fold, seed=0)
    assert result.epochs_run == 3
    assert (_traces(model.train_function), _traces(model.test_function), _traces(model.predict_function)) == (1, 1, 1)


SCRIPT = textwrap.dedent("""
    import logging
    import sys
    from kerasmer.data import make_synthetic
    from kerasmer.export import export_saved_model
    from kerasmer.training import KeepModel, RunConfig, run

    logging.getLogger("tensorflow").setLevel(logging.INFO)  # as in a notebook, where INFO records show
    out = sys.argv[1]
    root = make_synthetic(out + "/data", subjects=3, clips_per_class=1, seed=0)
    keep = KeepModel()
    config = RunConfig(model="learnet", data={"casme2": str(root)}, recipe="quickstart",
                       recipe_overrides={"epochs": 1, "batch_size": 4}, input_shape=[32, 32, 3], verbose=1,
                       deterministic=False, output_dir=out + "/run")
    result = run(config, hooks=[keep])
    export_saved_model(keep.model, out + "/saved_models/learnet", class_names=result.class_names)
    print("pooled UF1", result.pooled["uf1"])
""")


def test_a_run_logged_to_a_file_is_clean(tmp_path):
    """``run`` + export as ``kerasmer quickstart > log`` does them: no escape codes, retracing or temporary paths.

    Three one-epoch folds trace Keras' functions of three models within a few calls, which is what made
    TensorFlow warn about retracing; the export wrote "Assets written to: .../.tmp-..." at INFO.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], stdout=out, stderr=err, env=env,
                              timeout=600, check=False)
    stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, stderr[-3000:]
    assert "pooled UF1" in stdout and "fold 3/3 (03) done" in stdout and "fold 01 · epoch 1/1" in stdout
    both = stdout + stderr
    assert not ANSI.search(stdout), repr(stdout[:500])
    assert "reduce_retracing" not in both and "triggered tf.function retracing" not in both
    assert "Assets written" not in both and ".tmp-" not in both
