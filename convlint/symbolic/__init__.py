"""Symbolic integers (polynomials over the code's own names, with path facts) and spatial sizes."""
