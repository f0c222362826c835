"""Wattbench: which of your devices runs this AI model best — per second, per joule, per dollar."""

__version__ = "0.1.0"
