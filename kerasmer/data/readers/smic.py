"""SMIC reader: ``read_dataset("smic", root, modality="HS")``.

Reference: X. Li et al., "A Spontaneous Micro-expression Database: Inducement,
collection and baseline", IEEE FG 2013.  SMIC-HS: 16 subjects, 164 clips at
100 fps; SMIC-VIS and SMIC-NIR: 8 subjects, 71 clips each at 25 fps.

Expected layout under ``root`` (``SMIC_all_raw`` or ``SMIC_all_cropped``)::

    HS/s1/micro/negative/s1_ne_01/image069213.bmp
    HS/s1/micro/positive/s1_po_01/...
    HS/s1/micro/surprise/s1_sur_01/...
    VIS/s1/micro/...    NIR/s1/micro/...

There is no annotation spreadsheet: the label is the emotion folder, the clip
is the clip folder, and SMIC annotates no apex, so ``apex`` is ``<NA>`` and
``apex_missing`` is True.  ``onset``/``offset`` are the first and last frame
numbers present in the clip folder.  ``non_micro/`` folders (non-micro
sequences) are not read; a subject folder without ``micro/`` has no clips.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerasmer.data.readers.fixes import RowErrors
from kerasmer.data.readers import register_reader
from kerasmer.data.readers._common import AnnotationError, find_dir, list_frames, make_row, to_frame
from kerasmer.data.readers._mismatch import check_policy
from kerasmer.data.readers._sheet_reader import check_decodable

DATASET = "smic"
FPS = {"HS": 100.0, "VIS": 25.0, "NIR": 25.0}
EMOTIONS = ("negative", "positive", "surprise")


@register_reader(DATASET)
def read_smic(root, *, modality: str = "HS", errors: str = "raise",
              check_frames: bool = False, on_mismatch: str = "fix") -> pd.DataFrame:
    """Read one SMIC modality from its folder tree.

    Args:
        root: the dataset root (holding ``HS/``, ``VIS/``, ``NIR/``, possibly inside
            ``SMIC_all_raw/`` or ``SMIC_all_cropped/``), or the modality folder.
        modality: ``"HS"`` (default, 100 fps), ``"VIS"`` or ``"NIR"`` (25 fps).
        errors: ``"raise"`` (default) or ``"drop"`` (leave bad clips out, warned
            and counted in ``df.attrs["dropped"]``).
        check_frames: also decode each clip's first and last frames.
        on_mismatch: accepted for the same options as every reader; a SMIC clip is its folder
            (onset/offset are its first and last frames), so it cannot disagree with its frames.

    Returns:
        The schema DataFrame; ``subject`` is the folder name (``"s1"``), ``emotion``
        the emotion folder, ``apex`` missing; extra column ``modality``.

    Raises:
        AnnotationError: no modality folder, an unknown emotion folder, an empty or
            single-frame clip folder, an unreadable frame (names the folder).

    Example:
        >>> df = read_dataset("smic", "/data/SMIC_all_raw", modality="HS")  # doctest: +SKIP
    """
    modality = str(modality).upper()
    if modality not in FPS:
        raise ValueError(f"modality must be one of {sorted(FPS)}, got {modality!r}")
    root = Path(root)
    base = root if root.name.upper() == modality and root.is_dir() else find_dir(
        root, [modality, f"SMIC_all_raw/{modality}", f"SMIC_all_cropped/{modality}",
               f"SMIC/SMIC_all_raw/{modality}"], dataset=DATASET, what=f"{modality} folder")
    subjects = sorted((d for d in base.iterdir() if d.is_dir() and d.name.lower().startswith("s")),
                      key=lambda d: (len(d.name), d.name))
    if not subjects:
        raise AnnotationError(DATASET, base, "no subject folders (s1, s2, ...)")
    errs = RowErrors(DATASET, base, errors)
    rows = []
    for subj in subjects:
        micro = subj / "micro"
        if not micro.is_dir():
            continue
        for emo_dir in sorted(d for d in micro.iterdir() if d.is_dir()):
            for clip_dir in sorted(d for d in emo_dir.iterdir() if d.is_dir()):
                try:
                    if emo_dir.name.lower() not in EMOTIONS:
                        raise AnnotationError(DATASET, emo_dir, f"unexpected emotion folder {emo_dir.name!r}; "
                                              f"SMIC has {', '.join(EMOTIONS)}", row=clip_dir.name)
                    paths, numbers = list_frames(clip_dir, dataset=DATASET)
                    if len(numbers) < 2:
                        raise AnnotationError(DATASET, clip_dir, f"zero-length clip: only frame {numbers[0]}",
                                              row=clip_dir.name)
                    if check_frames:
                        check_decodable([paths[0], paths[-1]], dataset=DATASET, file=clip_dir, row=clip_dir.name)
                    rows.append(make_row(
                        dataset=DATASET, subject=subj.name, clip=clip_dir.name, emotion=emo_dir.name.lower(),
                        onset=numbers[0], apex=None, offset=numbers[-1], action_units="",
                        frame_paths=paths, frame_numbers=numbers, fps=FPS[modality], file=clip_dir,
                        row=clip_dir.name, modality=modality, fixes=""))
                except AnnotationError as err:
                    errs.handle(err)
    df = errs.finish(to_frame(rows, dataset=DATASET, file=base))
    df.attrs["mismatch"] = {"policy": check_policy(on_mismatch), "changed": [], "dropped": []}
    return df
