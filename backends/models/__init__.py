"""backends/models."""
