"""Flow, strain, apex-curve and montage pictures: the values they draw, and a real PNG each."""

import numpy as np
import pytest

from kerasmer.data.preprocess.apex import apex_curve, smooth_curve
from kerasmer.data.preprocess.dynamic_image import dynamic_image
from kerasmer.data.preprocess.flow import optical_flow, optical_strain
from kerasmer.viz import flow_to_rgb, plot_apex_curve, plot_clip_montage, plot_flow, plot_strain


def _moving_square(steps=6, size=48):
    """A bright square moving right by one pixel per frame: flow points right, a known apex at its end."""
    frames = np.zeros((steps, size, size), np.uint8)
    for t in range(steps):
        frames[t, 16:32, 12 + t:28 + t] = 200
    return frames


def test_flow_colours_follow_the_direction():
    right, down, left = ([1.0, 0.0], [0.0, 1.0], [-1.0, 0.0])
    rgb = flow_to_rgb(np.array([[right, down], [left, [0.0, 0.0]]], np.float32))
    np.testing.assert_allclose(rgb[0, 0], [1, 0, 0], atol=1e-6)      # rightwards: red
    np.testing.assert_allclose(rgb[1, 0], [0, 1, 1], atol=1e-6)      # leftwards: cyan
    np.testing.assert_allclose(rgb[0, 1], [0.5, 1, 0], atol=1e-6)    # downwards: hue 1/4
    np.testing.assert_allclose(rgb[1, 1], [0, 0, 0], atol=1e-6)      # still: black
    half = flow_to_rgb(np.array([[[0.5, 0.0]]], np.float32), max_magnitude=1.0)
    np.testing.assert_allclose(half[0, 0], [0.5, 0, 0], atol=1e-6)  # brightness = magnitude / max
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        flow_to_rgb(np.zeros((4, 4, 3)))


def test_flow_and_strain_pictures(tmp_path, check_png):
    frames = _moving_square()
    flow = optical_flow(frames[0], frames[2])
    rgb = flow_to_rgb(flow)
    moving = flow[..., 0] > 1.0
    assert moving.any() and np.all(rgb[moving][:, 0] >= rgb[moving][:, 2])  # rightwards reads red, not blue
    fig = plot_flow(flow, image=frames[0], path=tmp_path / "flow.png")
    check_png(fig, tmp_path / "flow.png")
    fig = plot_strain(optical_strain(flow), image=frames[0], path=tmp_path / "strain.png")
    check_png(fig, tmp_path / "strain.png")
    with pytest.raises(ValueError, match="finite"):
        plot_strain(np.full((4, 4), np.nan))


def test_apex_curve_picture(tmp_path, check_png):
    frames = np.concatenate([_moving_square(6), _moving_square(6)[::-1]])  # out and back: apex in the middle
    raw = apex_curve(frames)
    curve = smooth_curve(raw, 1.0)
    spotted = int(np.argmax(curve))
    assert spotted in (5, 6)
    fig = plot_apex_curve(curve, annotated=5, spotted=spotted, raw=raw, first_frame=100, path=tmp_path / "apex.png")
    check_png(fig, tmp_path / "apex.png")
    assert fig.axes[0].get_xlim()[0] <= 100 and fig.axes[0].get_xlim()[1] >= 111  # frame numbers on the axis
    with pytest.raises(ValueError, match="outside the curve"):
        plot_apex_curve(curve, spotted=len(curve))


def test_clip_montage_with_the_dynamic_image(tmp_path, check_png):
    clip = np.stack([np.stack([f] * 3, -1) for f in _moving_square(20)])
    fig = plot_clip_montage(clip, frame_numbers=range(40, 60), apex=7, dynamic=dynamic_image(clip), max_frames=5,
                            path=tmp_path / "montage.png")
    check_png(fig, tmp_path / "montage.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "onset 40" and "apex 47" in titles and "offset 59" in titles
    assert titles[-1] == "dynamic image" and len(titles) == 7  # 5 evenly spaced + the apex + the dynamic image
    with pytest.raises(ValueError, match="apex 20 is outside"):
        plot_clip_montage(clip, apex=20)
