"""convlint: a static analyzer for shape bugs in PyTorch convolutional networks."""

__version__ = "0.1.0"
