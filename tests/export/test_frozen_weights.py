"""TF_ONEDNN_ASSUME_FROZEN_WEIGHTS=1 (oneDNN keeps each conv's reordered weights): right in graph mode only.

The variable is read once per process, so every check runs in a child process that sets it.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import kerasmer
from kerasmer.core.precision import FROZEN_WEIGHTS_ENV, frozen_weights_assumed
from kerasmer.export import export_saved_model

CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np, keras, tensorflow as tf
    from kerasmer.inference.model import load_served_model
    saved, keras_file, x_file = sys.argv[1:4]
    x = np.load(x_file)
    fn = tf.saved_model.load(saved).signatures["serving_precomputed"]
    served = [fn(inputs=tf.constant(x))["probabilities"].numpy() for _ in range(2)]  # the 2nd uses the cache
    from_keras = load_served_model(keras_file, precision="float32").predict(x)
    eager = keras.ops.convert_to_numpy(keras.saving.load_model(keras_file, compile=False)(x))
    print(json.dumps({"served": served[1].tolist(), "keras": from_keras.tolist(), "eager": eager.tolist()}))
""")


def _twin_conv_model():
    # Two convolutions with the same attributes and shapes but different weights: eager execution gives both
    # one kernel, which is what makes the variable wrong outside graph mode.
    import keras

    keras.utils.set_random_seed(0)
    # (A first conv of another filter shape would hide it: the kernel keeps only the first shape it cached.)
    inputs = keras.Input((16, 16, 3), name="inputs")
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv_a")(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="fc")(x), name="twin")


def test_served_and_keras_predictions_are_unchanged_with_frozen_weights(tmp_path):
    model = _twin_conv_model()
    saved = export_saved_model(model, tmp_path / "twin", modality="frame", warmup=False)
    keras_file = tmp_path / "twin.keras"
    model.save(keras_file)
    (tmp_path / "twin.keras.json").write_text(json.dumps({"modality": "frame"}))
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    expected = np.asarray(model(x))
    env = {**os.environ, FROZEN_WEIGHTS_ENV: "1", "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(saved), str(keras_file), str(tmp_path / "x.npy")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(got["served"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["keras"], expected, rtol=1e-5, atol=1e-6)  # kerasmer's .keras path: graph mode
    # The hazard is real in this child: the same model called eagerly gives other outputs, so the two checks
    # above would fail if either path ran eagerly.
    assert np.abs(np.asarray(got["eager"]) - expected).max() > 1e-3


def test_mtcnn_refuses_to_run_with_frozen_weights(monkeypatch):
    from kerasmer.data.preprocess.face import FaceCropper

    monkeypatch.setenv(FROZEN_WEIGHTS_ENV, "1")
    assert frozen_weights_assumed()
    with pytest.raises(RuntimeError, match=FROZEN_WEIGHTS_ENV):
        FaceCropper(detector="mtcnn")._detector()
    monkeypatch.setenv(FROZEN_WEIGHTS_ENV, "0")
    assert not frozen_weights_assumed()
