"""Evaluation: choosing a model and its HDBSCAN parameters, as the study did.

- :mod:`.spec`: what a grid search covers (:class:`~.spec.GridSpec`) and returns
  (:class:`~.spec.GridResult`)
- :mod:`.grid`: the grid search itself (models x cells; DBCV, S_Dbw, cross-model AMI)
- :mod:`.tables`: per-model, per-cell and ranking tables; results saved and loaded
- :mod:`.select`: model filters (``window=1,arch=50``)
- :mod:`.figures`: the evaluate page's figures and the ``evaluate`` command's report files
"""
