"""The partner's client: every gRPC service of ``madoguchi.v1`` (async stubs
from grpcio-tools, typed by mypy-protobuf), with the API key on every call
and failures raised as :class:`MadoguchiError` (the ErrorInfo code)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import grpc.aio

from .errors import MadoguchiError
from .v1 import (
    chat_pb2_grpc,
    event_pb2_grpc,
    helpdesk_pb2_grpc,
    organization_pb2_grpc,
    ticket_pb2_grpc,
)


def _with_key(details: grpc.aio.ClientCallDetails, key: tuple[tuple[str, str], ...]) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()), *key)
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready)


class _UnaryAuthorize(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds ``authorization: Bearer <api key>``; raises typed errors."""

    def __init__(self, api_key: str) -> None:
        self._key = (("authorization", f"Bearer {api_key}"),)

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        call = await continuation(_with_key(client_call_details, self._key), request)
        try:
            return await call
        except grpc.RpcError as error:
            raise MadoguchiError.from_grpc(error) from error


class _StreamAuthorize(grpc.aio.UnaryStreamClientInterceptor):
    """The same for server streams. (grpc.aio files an interceptor under
    one kind only, so each kind has its own.)"""

    def __init__(self, api_key: str) -> None:
        self._key = (("authorization", f"Bearer {api_key}"),)

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> AsyncIterator[Any]:
        call = await continuation(_with_key(client_call_details, self._key), request)

        async def messages() -> AsyncIterator[Any]:
            try:
                async for message in call:
                    yield message
            except grpc.RpcError as error:
                raise MadoguchiError.from_grpc(error) from error

        return messages()


class PartnerClient:
    """The services a partner system calls with an organization's API key,
    over one channel to ``target`` (``127.0.0.1:50051``). Close it with
    ``await client.close()`` or ``async with``."""

    def __init__(self, target: str, api_key: str) -> None:
        self.channel = grpc.aio.insecure_channel(target, interceptors=[_UnaryAuthorize(api_key), _StreamAuthorize(api_key)])
        self.organizations = organization_pb2_grpc.OrganizationServiceStub(self.channel)
        self.helpdesk = helpdesk_pb2_grpc.HelpdeskServiceStub(self.channel)
        self.tickets = ticket_pb2_grpc.TicketServiceStub(self.channel)
        self.chats = chat_pb2_grpc.ChatServiceStub(self.channel)
        self.events = event_pb2_grpc.EventServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> PartnerClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
