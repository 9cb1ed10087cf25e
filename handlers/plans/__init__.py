"""Response plans as their authors write them: the reader builds plan sets and the directory from YAML (reader,
yaml_source, planset), lint checks what the reader built, load puts in force only a set lint accepts, diff and
coverage compare built sets cell by cell, matching picks the plan for an incident, timeline and directory say who is
told when, explain puts a match and its timeline together for `pingan plans test`, and approval decides four-eyes
sign-off.

Dependencies point one way: problems <- yaml_source <- reader <- lint <- load, with planset and cells beneath lint,
diff and coverage. May import: pingan.schemas, yaml and pydantic. Never: another handlers sub-package, the store,
the streams, the web layer or any I/O library (reading the plan files is the reader's only I/O).
"""
