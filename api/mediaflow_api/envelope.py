"""The response envelope of the previous MediaFlow service, kept so its clients keep working."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """`{"success": ..., "data": ..., "message": ...}`, the shape of every successful answer."""

    success: bool = True
    data: T
    message: str | None = Field(default=None, description="A sentence for people.")


def envelope(data: T, message: str | None = None, *, success: bool = True) -> Envelope[T]:
    """Wrap `data` in the envelope."""
    return Envelope[T](success=success, data=data, message=message)
