"""Confirmation: reproducers built from the numbers the analysis read, run by real torch in a child."""
