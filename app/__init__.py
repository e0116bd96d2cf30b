"""Doppel: a desktop studio for real-time face swapping."""

__version__ = "0.1.0"
APP_NAME = "Doppel"
