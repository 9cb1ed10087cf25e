"""Notification channel adapters (console, SMS and voice through Twilio, webhook, e-mail): the only I/O in handlers/.

Each adapter keeps the contract in base.py and answers with pingan.schemas.delivery's shapes. May import:
pingan.schemas, pingan.settings (for typing) and the I/O libraries they wrap. Never: another handlers sub-package,
the store, the streams, the web layer or the CLI.
"""
