"""The annotation DataFrame schema that every dataset reader returns, and its errors.

One row per clip.  Required columns (``COLUMNS``):

========== ================================================================
dataset    registry name of the dataset (``"casme2"``, ``"samm"``, ...)
subject    subject id as a string (``"01"``, ``"006"``, ``"s3"``)
clip       clip id as in the dataset (``"EP02_01f"``)
emotion    the dataset's own emotion label, lower-case
onset      onset frame number (int), as numbered in the dataset's files
apex       apex frame number (pandas ``Int64``; ``<NA>`` where missing)
offset     offset frame number (int)
action_units  the AU string as annotated ("" if none)
frame_paths   list of absolute frame paths, sorted by frame number
========== ================================================================

Standard extra columns every reader also fills:

============== ============================================================
frame_numbers  list[int], the frame number of each entry of frame_paths
fps            recording frame rate
apex_missing   bool: the annotation gives no usable apex (SMIC, "/" cells)
source         "file:row N" of the annotation row, for error messages
============== ============================================================
"""

from __future__ import annotations

COLUMNS = ("dataset", "subject", "clip", "emotion", "onset", "apex", "offset", "action_units", "frame_paths")
EXTRA_COLUMNS = ("frame_numbers", "fps", "apex_missing", "source")


class AnnotationError(ValueError):
    """Bad or inconsistent dataset input; the message names dataset, file and row.

    Args:
        dataset: dataset registry name.
        file: the offending file or folder.
        message: what is wrong.
        row: the annotation row (1-based spreadsheet row, or clip id), if any.
    """

    def __init__(self, dataset: str, file, message: str, row=None):
        self.dataset, self.file, self.row = dataset, str(file), row
        where = f"{file}" + (f", row {row}" if row is not None else "")
        super().__init__(f"[{dataset}] {where}: {message}")
