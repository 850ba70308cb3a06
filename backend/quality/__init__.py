"""Fingerprint quality: what a model's fingerprints know, read against baselines from the same
images and, with labels, a supervised ceiling (:func:`quality_report`); the physics a band
plot shows near E_F, from band data or from the plot's pixels (:mod:`.descriptors`), and how well
each feature set predicts it (:mod:`.physics`, the report's physics section).

Modules: :mod:`.report` (the report and its main table), :mod:`.inputs` (a window's images,
labels and folds), :mod:`.features` (the feature sets a window is scored on), :mod:`.baselines`
(pixel PCA, untrained encoders, the supervised ceiling; imports torch), :mod:`.metrics` (scores of
an array), :mod:`.physics`, :mod:`.descriptors`, :mod:`.rowcache` (rows on disk, keyed by the code).
"""

from backend.quality.report import COLUMNS, QualityResult, QualitySpec, quality_report  # noqa: F401
