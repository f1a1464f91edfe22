"""NumPy backend for plugrad."""
