"""Comparison methods, each trained and evaluated by the same engine as CAD-Net."""
