"""Pure decisions, one sub-package per domain: incidents (the pipeline), plans (authoring and matching), drills
(scoring and replay), audit (the hash-chained log), and channels, the adapters that are handlers' only I/O.

Beneath: pingan.schemas. Above: pingan.store, pingan.streams, pingan.web and pingan.cli call these functions; nothing
here imports them back (tests/unit/test_layers.py enforces it).
"""
