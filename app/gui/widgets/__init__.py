"""Widgets the pages are built from, one per file: they draw values and emit signals; the
controller alone runs things (import-linter keeps the engine, the store and threads out)."""
