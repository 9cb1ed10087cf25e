"""Adapters from external formats (CAP, Alertmanager, Twilio forms) to IntakeItems. Pure: bytes in, items out."""
