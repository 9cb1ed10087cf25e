"""Notification channel adapters: the only I/O in handlers/."""
