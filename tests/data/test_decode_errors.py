"""Issue 11 finding 5: a frame that fails to decode inside ``tf.data`` never aborts or hangs the process.

Before, ``tf.numpy_function`` raised inside a parallel map; the process then usually aborted
("terminate called without an active exception", exit -6) or hung after training.  Now the error
ends the dataset, comes back as the kerasmer error in the calling thread, and the fold fails like a
NaN fold (``FoldFailed``).
"""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kerasmer.data import make_dataset, read_dataset
from kerasmer.data.pipeline.tfdata import clear_input_cache, decode_errors_raised
from kerasmer.data.schema import AnnotationError
from tests.data import fixtures as fx

REPO = Path(__file__).resolve().parents[2]
CLIPS = [dict(subject=s, clip=f"EP0{i}_01", emotion=e, onset=1, apex=2, offset=4)
         for s in ("01", "02", "03") for i, e in enumerate(["disgust", "happiness"])]

# Trains fold "03" of a three-subject fixture whose test subject has a truncated frame (written after
# reading, so only tf.data meets it: the path the preflight exists to pre-empt).
SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tests.data import fixtures as fx
    from tests.data.test_decode_errors import CLIPS
    from kerasmer.data import read_dataset
    from kerasmer.evaluation.protocols import make_folds
    from kerasmer.training.recipes import get_recipe
    from kerasmer.training.trainer import FoldFailed, FoldTrainer, TrainSpec

    root, _ = fx.write_casme2_fixture(Path(sys.argv[1]), CLIPS)
    df = read_dataset("casme2", root)
    bad = root / "CASME2-RAW" / "sub03" / "EP01_01" / "img3.jpg"
    fx.write_frames(bad.parent, [3], size=64)
    bad.write_bytes(bad.read_bytes()[:300])
    fold = next(f for f in make_folds("loso", df) if set(df.iloc[f.test]["subject"]) == {"03"})
    spec = TrainSpec(model="learnet", class_names=["disgust", "happiness"], input_shape=(32, 32, 3),
                     recipe=get_recipe("learnet", "loso", epochs=1, batch_size=4))
    try:
        FoldTrainer(spec, log=lambda *a: None).train(df, fold)
    except FoldFailed as err:
        print("FOLDFAILED:", err, flush=True)
        sys.exit(0)
    print("NO ERROR", flush=True)
    sys.exit(3)
""")


def test_decode_error_in_a_test_subject_fails_the_fold_cleanly_in_a_subprocess(tmp_path):
    for attempt in range(3):  # the abort was intermittent: run it several times
        proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / f"run{attempt}")], cwd=REPO,
                              capture_output=True, text=True, timeout=240)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"attempt {attempt}: exit {proc.returncode}\n{out[-3000:]}"
        assert "terminate called" not in out
        assert re.search(r"FOLDFAILED: fold 03: \[casme2\] .*img3\.jpg: cannot read image \(truncated JPEG", out), out


def test_decode_error_surfaces_from_make_dataset_as_the_kerasmer_error(tmp_path):
    root, _ = fx.write_casme2_fixture(tmp_path / "C", CLIPS)
    df = read_dataset("casme2", root)
    victim = Path(df.iloc[3]["frame_paths"][1])
    victim.write_bytes(victim.read_bytes()[:100])
    clear_input_cache()
    ds = make_dataset(df, modality="dynamic_image", input_shape=(16, 16, 3), class_names=["disgust", "happiness"],
                      batch_size=2, normalization=False)
    delivered = []
    with pytest.raises(AnnotationError, match=re.escape(victim.name) + r".*truncated JPEG"):
        with decode_errors_raised():
            for x, _ in ds:
                delivered.append(int(x.shape[0]))
    assert sum(delivered) <= 3  # the data stopped at the damaged clip (row 3): no later clip was delivered
