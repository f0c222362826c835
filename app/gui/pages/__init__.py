"""The pages of the main window, one per file: widgets only, every long action through the
controller (import-linter keeps the engine, the store and threads out of here)."""
