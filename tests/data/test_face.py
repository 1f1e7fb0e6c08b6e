"""Face cropping: a real face photo, one detection per clip, fallbacks, errors, alignment."""

import sys

import cv2
import numpy as np
import pytest
from skimage import data

from kerasmer.data.preprocess.face import FaceCropper, NoFaceError, aligned_matrix


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()  # RGB, 512 x 512, Eileen Collins' face in the upper middle


def _eyes_found(face_rgb) -> int:
    eyes = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_eye.xml")
    gray = cv2.cvtColor(face_rgb, cv2.COLOR_RGB2GRAY)
    return len(eyes.detectMultiScale(gray, 1.1, 3, minSize=(10, 10)))


def test_haar_finds_the_astronauts_face(astronaut):
    cropper = FaceCropper(size=128, margin=0.1, color="rgb")
    clip = np.stack([astronaut] * 3)
    out, (index, det) = cropper.crop_clip(clip, clip_id="skimage/astronaut", return_detection=True)
    assert out.shape == (3, 128, 128, 3) and out.dtype == np.uint8 and index == 0
    x, y, w, h = det["box"]
    # her face spans roughly x 160..290, y 50..190 of the photo; the suit and the flag are elsewhere
    assert 160 <= x + w / 2 <= 290 and 50 <= y + h / 2 <= 190
    assert 60 <= w <= 200
    assert _eyes_found(out[0]) >= 1, "an independent eye detector should find an eye inside the crop"
    assert _eyes_found(cv2.resize(astronaut[350:, :], (128, 128))) == 0  # ...and none in the suit


def test_one_detection_gives_the_same_crop_for_every_frame(astronaut):
    # frame 1 is the photo moved 24 px right: a per-frame detector would follow the face,
    # a per-clip crop must not, so frame 1's crop is frame 0's crop shifted by 24 px * scale
    moved = np.roll(astronaut, 24, axis=1)
    out, (_, det) = FaceCropper(size=None, margin=0.0, color="rgb").crop_clip(
        np.stack([astronaut, moved]), clip_id="c", return_detection=True)
    assert out.shape[1] == round(det["box"][2])  # size=None keeps the box's own pixels (margin 0)
    a, b = out[0].astype(int), out[1].astype(int)
    assert np.abs(b[:, 24:] - a[:, :-24]).mean() < 1.0
    assert np.abs(b - a).mean() > 10.0


def test_falls_back_to_later_frames_and_keeps_grey_layout(astronaut):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    blank = np.full_like(gray, 120)
    out, (index, _) = FaceCropper(size=(64, 48)).crop_clip(np.stack([blank, blank, gray]), clip_id="c",
                                                           return_detection=True)
    assert index == 2 and out.shape == (3, 64, 48)
    assert np.all(out[0] == 120) and out[2].std() > 20  # the blank frames got the same crop
    single = FaceCropper(size=32).crop_clip(gray[None, ..., None], clip_id="c")
    assert single.shape == (1, 32, 32, 1)


def test_no_face_anywhere_names_the_clip():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (4, 120, 160, 3), dtype=np.uint8)
    with pytest.raises(NoFaceError, match="clip casme2/05/EP01_02: no face found .* 4 frame"):
        FaceCropper().crop_clip(noise, clip_id="casme2/05/EP01_02")
    with pytest.raises(ValueError, match="clip casme2/05/EP01_02: frames must be a non-empty clip"):
        FaceCropper().crop_clip(np.zeros((0, 10, 10), np.uint8), clip_id="casme2/05/EP01_02")


def test_mtcnn_missing_names_the_extra(monkeypatch, astronaut):
    monkeypatch.setitem(sys.modules, "mtcnn", None)  # makes "import mtcnn" fail, installed or not
    cropper = FaceCropper("mtcnn")  # constructing needs nothing; detection imports lazily
    with pytest.raises(ImportError, match=r"pip install kerasmer\[mtcnn\]"):
        cropper.crop_clip(astronaut[None], clip_id="c")


def test_eye_alignment_levels_the_eyes():
    cropper = FaceCropper("mtcnn", size=96, margin=0.2)
    det = {"box": (80, 60, 100, 100), "left_eye": (100.0, 100.0), "right_eye": (150.0, 120.0)}
    m, out = cropper.crop_matrix(det)
    left, right = m @ [100, 100, 1], m @ [150, 120, 1]
    assert out == (96, 96)
    assert abs(left[1] - right[1]) < 1e-6 and right[0] > left[0]
    # eye distance scales with output pixels per source pixel
    assert np.isclose(np.hypot(*(right - left)), np.hypot(50, 20) * 96 / 140)
    centre = aligned_matrix((130, 110), 0.0, 1.0, (50, 70)) @ [130, 110, 1]
    assert np.allclose(centre, [35, 25])


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="detector must be one of"):
        FaceCropper("dlib")
    with pytest.raises(ValueError, match="margin"):
        FaceCropper(margin=-0.1)
    with pytest.raises(ValueError, match="align=True needs eye landmarks"):
        FaceCropper("haar", align=True)
    with pytest.raises(ValueError, match="size"):
        FaceCropper(size=(0, 10))
