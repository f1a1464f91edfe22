"""Backend plugins for plugrad."""
