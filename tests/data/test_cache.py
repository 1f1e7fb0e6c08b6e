"""PreprocessCache: hits, misses, reuse across instances, invalidation, atomic writes, errors."""

import numpy as np
import pandas as pd
import pytest

from kerasmer.data.pipeline.cache import PreprocessCache, annotation_files, config_digest


def _rows(annotation):
    return [pd.Series({"dataset": "casme2", "subject": f"{s:02d}", "clip": f"EP0{c}_01", "onset": 10, "apex": 15,
                       "offset": 30, "apex_missing": False,
                       "frame_paths": [f"/d/s{s}/c{c}/img{i}.jpg" for i in range(10, 31)],
                       "source": f"{annotation}:row {2 * s + c}"}) for s in (1, 2) for c in (1, 2)]


class Builder:
    """A fake input builder that counts its calls and returns a row-specific array."""

    def __init__(self):
        self.calls = 0

    def __call__(self, row, input_shape):
        self.calls += 1
        value = int(row["subject"]) * 10 + int(row["clip"][3]) + int(row["onset"])
        return np.full(input_shape, value, np.float32)


@pytest.fixture
def setup(tmp_path):
    ann = tmp_path / "coding.xlsx"
    ann.write_bytes(b"annotation v1")
    df = pd.DataFrame(_rows(ann))
    return tmp_path / "cache", ann, df


def test_miss_then_hit_and_reuse_across_instances(setup):
    root, ann, df = setup
    config = {"modality": "flow", "method": "farneback", "size": (8, 8)}
    build = Builder()
    cache = PreprocessCache(root, config=config, annotation=df)
    first = [cache.cached(build)(row, (8, 8, 3)) for _, row in df.iterrows()]
    assert (cache.misses, cache.hits, cache.writes, build.calls) == (4, 0, 4, 4)
    again = [cache.cached(build)(row, (8, 8, 3)) for _, row in df.iterrows()]
    assert (cache.misses, cache.hits, build.calls) == (4, 4, 4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert len({float(a[0, 0, 0]) for a in first}) == 4  # each clip got its own array
    # a later run (new object, same config in another key order, a fold's subset of rows)
    later = PreprocessCache(root, config={"size": [8, 8], "method": "farneback", "modality": "flow"},
                            annotation=df.iloc[:2])
    assert later.namespace == cache.namespace
    assert later.warm(df.iloc[:2], build, (8, 8, 3)) == 0 and later.hits == 2 and build.calls == 4
    # another input shape is another entry
    cache.cached(build)(df.iloc[0], (4, 4, 3))
    assert cache.misses == 5 and build.calls == 5
    assert not list(root.rglob("*.tmp")), "temporary files must be renamed or removed"
    assert (cache.directory / "meta.json").is_file()


def test_changed_config_annotation_or_row_invalidates(setup):
    root, ann, df = setup
    build = Builder()
    base = PreprocessCache(root, config={"method": "farneback"}, annotation=ann)
    base.warm(df, build, (4, 4, 3))
    assert build.calls == 4
    other = PreprocessCache(root, config={"method": "dis"}, annotation=ann)
    assert other.namespace != base.namespace
    other.warm(df, build, (4, 4, 3))
    assert other.misses == 4 and other.hits == 0 and build.calls == 8
    ann.write_bytes(b"annotation v2: an apex corrected")
    edited = PreprocessCache(root, config={"method": "farneback"}, annotation=ann)
    assert edited.namespace != base.namespace
    assert edited.warm(df, build, (4, 4, 3)) == 4
    assert base.directory in edited.other_namespaces()
    # a row changed in memory (an annotation fix) misses; its neighbours still hit
    fixed = df.copy()
    fixed.loc[0, "onset"] = 12
    edited.warm(fixed, build, (4, 4, 3))
    assert edited.misses == 5 and edited.hits == 3
    assert edited.cached(build)(fixed.iloc[0], (4, 4, 3))[0, 0, 0] == 11 + 12


def test_corrupt_file_is_recomputed_with_a_warning(setup):
    root, ann, df = setup
    build = Builder()
    cache = PreprocessCache(root, config={"m": 1}, annotation=ann)
    row = df.iloc[0]
    good = cache.get_or_compute(row, lambda: build(row, (3, 3)))
    path = cache.path(row)
    path.write_bytes(path.read_bytes()[:20])  # truncated, as after a full disk
    with pytest.warns(UserWarning, match="casme2/01/EP01_01: unreadable cache file"):
        again = cache.get_or_compute(row, lambda: build(row, (3, 3)))
    assert np.array_equal(good, again) and cache.corrupt == 1 and build.calls == 2
    assert np.array_equal(np.load(path), good)


def test_failed_compute_leaves_nothing_and_errors_are_clear(setup):
    root, ann, df = setup
    cache = PreprocessCache(root, config={"m": 1}, annotation=ann)
    row = df.iloc[1]

    def boom():
        raise RuntimeError("decoder crashed")

    with pytest.raises(RuntimeError, match="decoder crashed"):
        cache.get_or_compute(row, boom)
    assert not cache.has(row) and cache.files() == []
    with pytest.raises(TypeError, match="casme2/01/EP02_01.*not a numeric numpy array"):
        cache.get_or_compute(row, lambda: [1, 2, 3])
    with pytest.raises(KeyError, match="EP02_01 is not in the cache"):
        cache.load(row)
    with pytest.raises(TypeError, match=r"config\.face is a function"):
        PreprocessCache(root, config={"face": lambda frame: frame}, annotation=ann)
    with pytest.raises(FileNotFoundError, match="missing.xlsx does not exist"):
        PreprocessCache(root, config={}, annotation=root / "missing.xlsx")


def test_annotation_files_from_source_column(setup):
    _, ann, df = setup
    assert annotation_files(df) == [str(ann)]
    assert config_digest({"a": (1, 2), "b": np.int64(3)}) == config_digest({"b": 3, "a": [1, 2]})


def test_tf_dataset_reads_the_cached_arrays_in_order(setup):
    root, ann, df = setup
    build = Builder()
    cache = PreprocessCache(root, config={"m": 2}, annotation=df)
    cache.cached(build)(df.iloc[2], (5, 4, 3))  # one entry exists, three are computed by dataset()
    xs = list(cache.dataset(df, build, (5, 4, 3)).as_numpy_iterator())
    assert build.calls == 4 and cache.misses == 4
    expected = [build(row, (5, 4, 3)) for _, row in df.iterrows()]
    assert len(xs) == 4 and all(x.shape == (5, 4, 3) and x.dtype == np.float32 for x in xs)
    assert all(np.array_equal(x, e) for x, e in zip(xs, expected))
    path = cache.path(df.iloc[1], {"input_shape": [5, 4, 3]})
    path.write_bytes(b"\x93NUMPY garbage")  # unreadable header: recomputed, not read as garbage
    again = list(cache.dataset(df, build, (5, 4, 3)).as_numpy_iterator())
    assert np.array_equal(again[1], expected[1]) and cache.misses == 5
