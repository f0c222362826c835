"""backends/runtimes."""
