"""Fingerprint quality: what a model's fingerprints know, read against baselines from the same
images and, with labels, a supervised ceiling (:func:`quality_report`); the physics a band
plot shows near E_F, from band data or from the plot's pixels (:mod:`.descriptors`)."""

from backend.quality.report import COLUMNS, QualityResult, QualitySpec, quality_report  # noqa: F401
