"""Label schemes (``map_labels``) and the MEGC 2019 composite (``composite``).

``map_labels(df, scheme)`` never changes ``emotion``: it writes the mapped class
to a new column ``label`` and leaves out rows whose emotion has no class in the
scheme, returning ``(df, summary)`` where the summary counts every class kept
and every label dropped, per dataset, so nothing disappears unreported.

Schemes:

* ``"raw"``: ``label`` = ``emotion`` (only rows with an empty emotion dropped);
* ``"casme2_5class"``: the common 5-class CASME II protocol: happiness,
  disgust, repression, surprise, others (fear and sadness dropped);
* ``"objective"``: ``label`` = ``objective_class`` (``"I"``..``"VII"``), for
  datasets that give objective classes (SAMM, CAS(ME)³); rows without one
  dropped;
* ``"megc3"``: the MEGC 2019 composite classes negative / positive / surprise:
  CASME II disgust, repression → negative; SAMM anger, contempt, disgust, fear,
  sadness → negative; SMIC negative → negative; happiness or positive →
  positive; surprise → surprise.  For datasets outside the MEGC 2019 composite
  the same rule is used with negative = anger, contempt, disgust, fear,
  sadness (sad), negative, repression;
* a dict given by the user: ``{emotion: class}`` for every dataset, or
  ``{dataset: {emotion: class}}``; emotions are compared lower-cased.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Mapping, Sequence

import pandas as pd

from kerasmer.data.readers import read_dataset

logger = logging.getLogger("kerasmer.data")

MEGC3_CLASSES = ("negative", "positive", "surprise")
_MEGC3_GENERIC = {
    **dict.fromkeys(("anger", "contempt", "disgust", "fear", "sadness", "sad", "negative", "repression"),
                    "negative"),
    **dict.fromkeys(("happiness", "happy", "positive"), "positive"),
    "surprise": "surprise",
}
SCHEMES: dict = {
    "casme2_5class": {"*": {e: e for e in ("happiness", "disgust", "repression", "surprise", "others")}},
    "megc3": {
        "casme2": {"disgust": "negative", "repression": "negative", "happiness": "positive", "surprise": "surprise"},
        "samm": {**dict.fromkeys(("anger", "contempt", "disgust", "fear", "sadness"), "negative"),
                 "happiness": "positive", "surprise": "surprise"},
        "smic": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
        "*": _MEGC3_GENERIC,
    },
}
CLASS_ORDER = {"megc3": MEGC3_CLASSES,
               "casme2_5class": ("happiness", "disgust", "repression", "surprise", "others")}


def _table_for(scheme) -> dict:
    if isinstance(scheme, Mapping):
        nested = all(isinstance(v, Mapping) for v in scheme.values())
        table = dict(scheme) if nested else {"*": dict(scheme)}
        return {ds: {str(k).strip().casefold(): str(v) for k, v in m.items()} for ds, m in table.items()}
    if scheme not in SCHEMES:
        raise ValueError(f"unknown label scheme {scheme!r}; use 'raw', 'objective', "
                         f"{', '.join(map(repr, SCHEMES))} or a dict")
    return SCHEMES[scheme]


def map_labels(df: pd.DataFrame, scheme="megc3", *, target: str = "label") -> tuple[pd.DataFrame, dict]:
    """Map each clip's emotion to a class of ``scheme``, dropping (and counting) the unmapped.

    Args:
        df: a reader's DataFrame (``dataset`` and ``emotion`` columns; ``objective_class``
            for ``"objective"``).
        scheme: ``"raw"``, ``"casme2_5class"``, ``"objective"``, ``"megc3"`` or a dict
            (``{emotion: class}`` or ``{dataset: {emotion: class}}``; ``"*"`` as a
            dataset key applies to every other dataset).
        target: the column written with the class; ``emotion`` is kept unchanged.

    Returns:
        ``(mapped, summary)``: ``mapped`` holds the kept rows (index reset) with the
        new ``target`` column; ``summary`` is a dict with ``scheme``, ``kept``,
        ``dropped`` (counts), ``classes`` (class -> count, in class order),
        ``per_dataset`` (dataset -> class -> count) and ``dropped_labels``
        (dataset -> emotion -> count of dropped rows).

    Raises:
        ValueError: unknown scheme, or missing ``emotion``/``objective_class`` column.

    Example:
        >>> df = pd.DataFrame({"dataset": ["samm"] * 3, "emotion": ["anger", "happiness", "other"]})
        >>> mapped, summary = map_labels(df, "megc3")
        >>> list(mapped["label"]), summary["dropped_labels"]
        (['negative', 'positive'], {'samm': {'other': 1}})
    """
    source = "objective_class" if scheme == "objective" else "emotion"
    if source not in df.columns:
        raise ValueError(f"map_labels({scheme!r}) needs a {source!r} column; the dataset read does not give one"
                         if source == "objective_class" else "map_labels needs an 'emotion' column")
    datasets = df["dataset"].astype(str) if "dataset" in df.columns else pd.Series("", index=df.index)
    values = df[source].map(lambda v: "" if pd.isna(v) else str(v).strip())
    if scheme in ("raw", "objective"):
        labels = values.where(values != "", None)
    else:
        table = _table_for(scheme)
        labels = pd.Series([table.get(ds, table.get("*", {})).get(v.casefold())
                            for ds, v in zip(datasets, values)], index=df.index, dtype=object)
    keep = labels.notna()
    mapped = df[keep.to_numpy()].copy()
    mapped[target] = labels[keep].astype(str).to_numpy()
    mapped = mapped.reset_index(drop=True)

    order = list(CLASS_ORDER.get(scheme, ())) if isinstance(scheme, str) else []
    counts = Counter(mapped[target])
    classes = {c: counts[c] for c in order if c in counts}
    classes.update({c: counts[c] for c in sorted(counts) if c not in classes})
    per_dataset = {ds: dict(sorted(Counter(g[target]).items())) for ds, g in mapped.groupby(
        mapped["dataset"] if "dataset" in mapped.columns else pd.Series("", index=mapped.index), sort=True)}
    dropped_labels: dict = {}
    for ds, v in zip(datasets[~keep], values[~keep]):
        dropped_labels.setdefault(ds, Counter())[v or "<empty>"] += 1
    summary = {
        "scheme": scheme if isinstance(scheme, str) else "custom",
        "kept": int(keep.sum()), "dropped": int((~keep).sum()), "classes": classes,
        "per_dataset": per_dataset,
        "dropped_labels": {ds: dict(sorted(c.items())) for ds, c in dropped_labels.items()},
    }
    if summary["dropped"]:
        logger.info("map_labels(%s): kept %d, dropped %d rows with no class: %s", summary["scheme"],
                    summary["kept"], summary["dropped"], summary["dropped_labels"])
    return mapped, summary


def composite(names: Sequence[str] = ("casme2", "samm", "smic"), roots=None, scheme="megc3", *,
              options: Mapping | None = None) -> tuple[pd.DataFrame, dict]:
    """Read several datasets and combine them under one label scheme (the MEGC 2019 composite by default).

    Subjects are prefixed with their dataset (``casme2_01``, ``samm_006``,
    ``smic_s3``) so LOSO folds never merge two people; the dataset's own id is
    kept in ``dataset_subject`` and the ``dataset`` column is kept.

    Args:
        names: reader names.
        roots: ``{name: root}``, or a sequence of roots in the order of ``names``.
        scheme: label scheme for :func:`map_labels`.
        options: ``{name: {reader option: value}}``, e.g. ``{"smic": {"modality": "HS"}}``.

    Returns:
        ``(df, summary)`` as :func:`map_labels` returns them; ``summary["read"]``
        gives the clips read per dataset before mapping, ``summary["mismatch"]`` each
        reader's ``df.attrs["mismatch"]`` (clips changed or dropped by ``on_mismatch``).

    Raises:
        ValueError: a dataset without a root, or duplicated names.

    Example:
        >>> df, summary = composite(["casme2", "samm", "smic"],
        ...                         {"casme2": "/data/CASME2", "samm": "/data/SAMM",
        ...                          "smic": "/data/SMIC_all_raw"})  # doctest: +SKIP
        >>> summary["per_dataset"]  # doctest: +SKIP
    """
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError(f"composite: duplicated dataset names in {names}")
    if roots is None or isinstance(roots, (str, bytes)) or not isinstance(roots, (Mapping, Sequence)):
        raise ValueError("composite: give roots as {name: root} or a list in the order of names")
    if not isinstance(roots, Mapping):
        if len(roots) != len(names):
            raise ValueError(f"composite: {len(names)} names but {len(roots)} roots")
        roots = dict(zip(names, roots))
    missing = [n for n in names if n not in roots]
    if missing:
        raise ValueError(f"composite: no root given for {missing}")
    options = dict(options or {})
    frames, read, mismatch = [], {}, {}
    for name in names:
        df = read_dataset(name, roots[name], **dict(options.get(name, {})))
        df = df.copy()
        df["dataset_subject"] = df["subject"].astype(str)
        df["subject"] = name + "_" + df["dataset_subject"]
        read[name] = len(df)
        mismatch[name] = df.attrs.get("mismatch")  # concat drops attrs: the run records this instead
        frames.append(df)
    combined = pd.concat(frames, ignore_index=True, sort=False)
    mapped, summary = map_labels(combined, scheme)
    summary["read"] = read
    summary["mismatch"] = mismatch
    return mapped, summary


__all__ = ["MEGC3_CLASSES", "SCHEMES", "composite", "map_labels"]
