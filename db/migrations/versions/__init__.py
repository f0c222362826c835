"""Numbered migration steps."""
