"""Immutable records that are cheap to build: NamedTuples that compare like frozen dataclasses."""

from __future__ import annotations

from typing import TypeVar

_Record = TypeVar("_Record", bound=tuple[object, ...])


def same_type_equality(cls: type[_Record]) -> type[_Record]:
    """Make a NamedTuple compare like a frozen dataclass: equal only to the same type.

    Values created on every quote (tax requests and lines here, the priced
    order's parts in :mod:`gateway.core.pricing`) are NamedTuples rather than frozen
    dataclasses: immutable and typed like them, but several times cheaper to
    construct. The pitfall of a tuple is that it is one: by default it would
    equal a plain tuple, or another NamedTuple, holding the same fields. This
    restores the dataclass behaviour for ``==`` and ``!=`` (``hash`` stays the
    tuple's, which is consistent with it). The rest is still tuple behaviour,
    so code must not rely on it: values unpack, iterate, index, have a
    ``len()`` and order like tuples, and ``dataclasses.replace``/``asdict``
    do not apply (``_replace``/``_asdict`` do).
    """

    def __eq__(self: tuple[object, ...], other: object) -> bool:
        if other.__class__ is self.__class__:
            return tuple.__eq__(self, other)
        # False, not NotImplemented, for other tuples: tuple.__eq__ would call them equal.
        return False if isinstance(other, tuple) else NotImplemented

    def __ne__(self: tuple[object, ...], other: object) -> bool:
        equal = __eq__(self, other)
        return equal if equal is NotImplemented else not equal

    # mypy does not let a class's methods be replaced (method-assign), which is the point here.
    cls.__eq__ = __eq__  # type: ignore[method-assign]
    # tuple has no __ne__ of its own, so mypy expects object's, whose self is any object; this
    # one is only ever installed on tuples (assignment).
    cls.__ne__ = __ne__  # type: ignore[assignment,method-assign]
    cls.__hash__ = tuple.__hash__  # type: ignore[method-assign]
    return cls
