"""argparse types shared by the load-test commands: bad values are refused with a message."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return number


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def comma_list(check: Callable[[list[str]], T]) -> Callable[[str], T]:
    """An argparse type: ``a,b,c`` split and stripped, then ``check``ed (its ValueError is the message)."""
    def parse(value: str) -> T:
        try:
            return check([item.strip() for item in value.split(",") if item.strip()])
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def positive_ints(values: list[str]) -> list[int]:
    """Distinct integers >= 1, sorted (concurrencies), or a ValueError."""
    try:
        numbers = sorted({int(value) for value in values})
    except ValueError:
        raise ValueError(f"{','.join(values)!r}: give integers, e.g. 1,2,4,8") from None
    if not numbers or numbers[0] < 1:
        raise ValueError(f"{','.join(values)!r}: values must be >= 1")
    return numbers


def choices(known: list[str]) -> Callable[[list[str]], list[str]]:
    """A check for ``comma_list``: names from ``known``, in the order given."""
    def check(names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            raise ValueError(f"unknown {unknown or names}; choose from {', '.join(known)}")
        return names
    return check
