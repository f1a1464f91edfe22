"""Backends shipped with plugrad, registered through the same entry points as third-party ones."""
