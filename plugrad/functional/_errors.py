"""Every public function names itself in the errors that escape it.

Argument errors can surface deep inside a front end (an axis helper, ``int()`` of a NaN, a
tuple unpacking); the user called ``F.var`` and should read ``var:`` first. One wrapper at the
public boundary does that for every function, instead of a check per op: it prefixes the
function's name when the message does not start with it, and turns the arithmetic and
attribute errors of a bad argument into the ValueError or TypeError users can rely on.
A try block costs nothing until something raises, so the hot path pays one call.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

__all__ = ["names_itself"]

#: Exceptions of bad arguments, and the documented type each one surfaces as.
_SURFACES_AS: tuple[tuple[type[BaseException], type[Exception]], ...] = (
    (IndexError, IndexError),
    (KeyError, ValueError),
    (TypeError, TypeError),
    (AttributeError, TypeError),  # an argument of the wrong type lacks a tensor's attributes
    (ValueError, ValueError),
    (ArithmeticError, ValueError),  # int(nan), int(inf), a zero stride in a division
    (MemoryError, MemoryError),  # named, so the user sees which call asked for too much
)
_CAUGHT = tuple(kind for kind, _ in _SURFACES_AS)


def names_itself(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` whose TypeError/ValueError/IndexError/MemoryError messages start with
    ``name:``."""

    @functools.wraps(function)
    def public(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except _CAUGHT as exc:
            message = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) \
                else str(exc)
            surface = next(kind for caught, kind in _SURFACES_AS if isinstance(exc, caught))
            if type(exc) is surface and message.startswith(f"{name}:"):
                raise
            if not message.startswith(f"{name}:"):
                message = f"{name}: {message}"
            raise surface(message).with_traceback(exc.__traceback__) from None

    # the marker _name_errors skips; mypy does not model attributes set on functions
    public.__wrapped_public__ = True  # type: ignore[attr-defined]
    return public
