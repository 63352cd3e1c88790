"""Typed errors carrying the server's error code, the same on both surfaces:
GraphQL's ``extensions.code`` / ``extensions.field``, and gRPC's
``google.rpc.ErrorInfo`` reason / ``google.rpc.BadRequest`` field."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


class MadoguchiError(Exception):
    """An error the server answered with (or ``UNAVAILABLE`` when it could not
    be reached). Branch on :attr:`code`, not on the message."""

    def __init__(self, message: str, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field

    def __repr__(self) -> str:
        return f"MadoguchiError(code={self.code!r}, field={self.field!r}, message={self.message!r})"

    @classmethod
    def from_graphql(cls, error: dict[str, Any]) -> MadoguchiError:
        """Reads one GraphQL error object (``{"message", "extensions"}``)."""
        extensions = error.get("extensions") or {}
        code = extensions.get("code")
        field = extensions.get("field")
        return cls(
            str(error.get("message", "")),
            code if isinstance(code, str) else "INTERNAL",
            field if isinstance(field, str) else None,
        )

    @classmethod
    def from_grpc(cls, error: grpc.RpcError) -> MadoguchiError:
        """Reads a failed call: the ErrorInfo reason (else the status code's
        name) and the first BadRequest field."""
        code_of = getattr(error, "code", None)
        status_code = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
        details_of = getattr(error, "details", None)
        message = (details_of() if callable(details_of) else None) or ""
        code: str = status_code.name
        field: str | None = None
        metadata_of = getattr(error, "trailing_metadata", None)
        for key, value in (metadata_of() if callable(metadata_of) else None) or ():
            if key != _DETAILS_KEY or not isinstance(value, bytes):
                continue
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    code = info.reason or code
                elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    if bad.field_violations:
                        field = bad.field_violations[0].field
        return cls(message, code, field)
