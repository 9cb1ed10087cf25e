"""Trend early warning (趋势预警, issue 18): pure detectors over a series of report counts per interval.

`ears` holds CDC's EARS C1, C2 and C3, `cusum` a one-sided CUSUM on standardized counts; `evaluate` runs the one a
rule chooses over a series and says whether it alarms, with the evidence (baseline, threshold, statistic).

May import: pingan.schemas only. Never: another handlers sub-package, the store, the streams or any I/O library;
streams/trends.py reads the counts from the store, calls these and commits what they decide.
"""
