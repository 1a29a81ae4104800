"""gdrun: gradient-descent experiments in PyTorch, composed with Hydra, one folder per run."""

__version__ = "0.1.0"
