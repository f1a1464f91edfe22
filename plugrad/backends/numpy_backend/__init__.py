"""The CPU backend: NumPy kernels. ``plugin`` is the entry point; ``kernels``, ``conv`` and ``pool``
hold the array-module-generic kernel tables the cupy backend shares."""
