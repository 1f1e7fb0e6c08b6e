"""Face tracking through a video: one crop per window, a new window on drift, a no-face stretch reported."""

import cv2
import numpy as np
import pytest
from skimage import data

from kerasmer.inference import FaceTracker, predict_video
from kerasmer.inference.tracking import box_drift

from tests.inference.conftest import CLASSES


@pytest.fixture(scope="module")
def sequence():
    """30 frames at 20 fps: the astronaut (0-7), moved 32 px right (8-15), no face (16-21), back (22-25), 2 px (26-29).

    Returns ``(frames, expected windows, expected no-face stretches)``.
    """
    face = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)  # RGB, her face ~53 px
    blank = np.full_like(face, 90)
    frames = [face] * 8 + [np.roll(face, 32, axis=1)] * 8 + [blank] * 6 + [face] * 4 + [np.roll(face, 2, axis=1)] * 4
    return np.stack(frames), [(0, 8), (8, 16), (22, 30)], [(16, 22)]


def test_windows_split_on_drift_and_loss_but_not_on_jitter(sequence):
    frames, windows_expected, no_face_expected = sequence
    tracker = FaceTracker("haar", fps=20.0, redetect_s=0.2, drift=0.15, crop_size=64)
    for i, frame in enumerate(frames):
        tracker.feed(i, frame)
    windows, no_face = tracker.finish()
    assert [(w.start, w.stop) for w in windows] == windows_expected
    assert no_face == no_face_expected
    # one crop per window: within a window every crop comes from the same box, so identical frames crop the same
    last = windows[2]
    assert np.array_equal(last.crops[0], last.crops[3])
    assert not np.array_equal(last.crops[3], last.crops[4])  # the 2 px move shows as motion, not as a new crop
    # after the 32 px jump the new window's crop follows the face: it matches the first window's crop
    diff_followed = np.abs(windows[1].crops[0].astype(int) - windows[0].crops[0]).mean()
    assert diff_followed < 5.0, diff_followed
    assert tracker.detections < len(frames)  # re-detection, not a detector call per frame


def test_box_drift_measures_shift_and_resize():
    assert box_drift((0, 0, 100, 100), (0, 0, 100, 100)) == 0.0
    assert box_drift((0, 0, 100, 100), (30, 40, 100, 100)) == pytest.approx(0.5)
    assert box_drift((0, 0, 100, 100), (-10, -10, 120, 120)) == pytest.approx(0.2)


def test_predict_with_the_haar_tracker_reports_the_no_face_stretch(sequence, tiny_model, tmp_path):
    frames, _, _ = sequence
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    lines = []
    df = predict_video(folder, tiny_model[1], fps=20.0, interval="1:3:6", face="haar", progress=False,
                       tracking={"redetect_s": 0.2}, log=lines.append)
    assert df.attrs["no_face"] == [[16, 22]]
    assert any("no face in frames 16..21" in line for line in lines)
    assert df["label"].iloc[0] in CLASSES
    with pytest.raises(ValueError, match=r"--interval 14:16:18 is not inside one tracked face window"):
        predict_video(folder, tiny_model[1], fps=20.0, interval="14:16:18", face="haar", progress=False,
                      tracking={"redetect_s": 0.2}, log=lines.append)
