"""The CPU backend: NumPy kernels. ``plugin`` is the entry point; ``kernels`` the table."""
