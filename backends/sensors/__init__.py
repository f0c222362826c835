"""backends/sensors."""
