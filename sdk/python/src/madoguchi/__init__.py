"""Madoguchi's Python SDK: :class:`AgentClient` (typed async GraphQL with
resumable live subscriptions) for agents' tools, :class:`PartnerClient` (gRPC
with an API key) for partner systems, and :class:`MadoguchiError`."""

from .agent import AgentClient
from .errors import MadoguchiError
from .partner import PartnerClient

__all__ = ["AgentClient", "MadoguchiError", "PartnerClient"]
