"""Evaluation: zero-shot classification (WAON-Bench, Recruit) and image-text retrieval (XM3600).

- ``metrics``: pure NumPy metric functions (also behind the ``evaluate`` modules in ``waon_hf/metrics/``)
- ``templates``: the Japanese prompt templates
- ``benchmarks``: benchmark name -> loader registry
- ``zeroshot``: the runner (any ``AutoModel`` with ``get_image_features`` / ``get_text_features``)
- ``cli``: ``waon eval``

Nothing heavy is imported here: ``import waon_hf.eval.metrics`` needs NumPy only.
"""
