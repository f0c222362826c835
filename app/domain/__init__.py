"""Plain immutable values every layer shares: specs, results, figures, events, errors.

Nothing here imports another Wattbench package: this is the bottom layer.
"""
