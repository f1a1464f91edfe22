"""The conformance tests; run them with ``python -m plugrad.conformance --backend NAME``."""

__all__: list[str] = []
