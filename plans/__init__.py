"""The YAML response plans shipped with Pingan (the default PINGAN_PLANS_DIR)."""

from pathlib import Path

PLANS_DIR = Path(__file__).resolve().parent
