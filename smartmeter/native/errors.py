"""The native runner's error type: the package's one error type (smartmeter.errors)."""

from smartmeter.errors import LakehouseError as StackError

__all__ = ["StackError"]
