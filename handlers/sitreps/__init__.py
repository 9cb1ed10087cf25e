"""Situation reports (态势研判, issue 17) as pure decisions: the period's bounds, the figures from rows the store read
(`figures.py`), and the self-contained HTML with its inline SVG charts (`render.py`).

May import: pingan.schemas, pingan.handlers.plans (the plans' targets) and pingan.handlers.incidents (what a merge
leaves). Never: the channels, the store, the
streams, the web layer or any I/O library; `store/sitrep_queries.py` reads the rows and the CLI, the worker's
daily job and the API drive them.
"""
