"""Drills (演练) as pure decisions: scoring a run against its plan's targets, the HTML report, building a replay
scenario from a recorded incident, and turning injects into exercise messages (CAP rewriting, report bodies).

May import: pingan.schemas, pingan.handlers.plans and pingan.handlers.incidents. Never: the channels, the store,
the streams, the web layer or any I/O library; the drill runner (pingan.drill_runner) drives a stack with them.
"""
