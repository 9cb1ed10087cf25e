"""Pingan (平安): event-driven emergency response and alerting."""

__version__ = "0.1.0"
