"""Comparison reports: HTML, PDF, CSV and JSON."""
