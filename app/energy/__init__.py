"""Power sampling and energy figures (no Qt, no vendor imports)."""
