"""The torch library model: abstract values, the layers torch builds and what they do to shapes,
the facts the interpreter reports, and the shape models of library helpers (``library``)."""
