"""From a clip's frames to arrays a model can take, one step per module.

* :mod:`~kerasmer.data.preprocess.face`: face detection and alignment (:class:`FaceCropper`).
* :mod:`~kerasmer.data.preprocess.apex`: onset/apex/offset positions and apex spotting.
* :mod:`~kerasmer.data.preprocess.samplers`: temporal samplers (T frames out of a clip).
* :mod:`~kerasmer.data.preprocess.dynamic_image`: rank-pooled dynamic images.
* :mod:`~kerasmer.data.preprocess.flow`: optical flow and optical strain.

These work on NumPy arrays and know nothing of rows' batching, caching or of
models; :mod:`kerasmer.data.pipeline` turns annotation rows into model inputs with them.
"""
