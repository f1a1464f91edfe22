"""Public path of GradManager (``plugrad.autodiff.GradManager``)."""
from plugrad.core.grad_manager import GradManager

__all__ = ["GradManager"]
