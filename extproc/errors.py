"""The product's own exceptions: foreign ones (redis, grpc, json) are mapped here."""

from __future__ import annotations


class ExtprocError(Exception):
    """Base of every error this package raises on purpose."""


class StoreUnavailable(ExtprocError):
    """Redis could not be reached or did not answer in time."""


class BadRequest(ExtprocError):
    """The client's request cannot be read as the API it was sent to."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
