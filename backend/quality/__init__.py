"""Fingerprint quality: what a model's fingerprints know, read against baselines from the same
images and, with labels, a supervised ceiling (:func:`quality_report`)."""

from backend.quality.report import COLUMNS, QualityResult, QualitySpec, quality_report  # noqa: F401
