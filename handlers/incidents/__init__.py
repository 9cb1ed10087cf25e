"""The incident pipeline's decisions, as pure functions over schemas: triage (a new incident, a correlated report,
an update or a close), the response (which plan level, which notifications), escalation (deadlines, acknowledgements,
commands), delivery (what a channel's answer means for the ledger), the pipeline's heartbeat, and the intake
preview (`pingan intake test`: what a message would become and which plan it would match).

May import: pingan.schemas and pingan.handlers.plans (to match plans and resolve their targets). Never: the channels,
the store, the streams, the web layer or any I/O library; the stages in pingan.streams do the I/O around these calls.
"""
