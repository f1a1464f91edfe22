"""plugrad: a MegEngine-style deep-learning framework whose kernels come from backend plugins."""
__version__ = "0.1.0"
