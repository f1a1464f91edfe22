"""The conformance tests; run them with ``python -m plugrad.conformance --backend NAME``."""
