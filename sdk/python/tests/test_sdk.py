"""Every SDK operation against the real server: sign-in, a signed LINE
webhook seen live, a dropped subscription resumed without loss, claim and
reply, image upload, gRPC linking with a ZSC key, SubmitChat, ticket
conversion, a streamed event, and the error codes of both surfaces."""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from websockets.asyncio.client import ClientConnection

from harness import ADMIN_EMAIL, ADMIN_PASSWORD, CHANNEL_SECRET, OPERATOR_KEY, RunningServer, text_event
from madoguchi import AgentClient, MadoguchiError, PartnerClient
from madoguchi.graphql.base_model import Upload
from madoguchi.graphql.input_types import ChatFilterInput, ContactInput, ConvertChatInput
from madoguchi.v1 import chat_pb2, event_pb2, helpdesk_pb2, organization_pb2, platform_pb2, platform_pb2_grpc, ticket_pb2

T = TypeVar("T")
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


async def admin(client: AgentClient, query: str, **variables: Any) -> dict[str, Any]:
    """Runs an operation the curated set leaves to admins' tools."""
    return client.get_data(await client.execute(query, variables=variables))


async def until(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    deadline = time.monotonic() + 30
    while True:
        value = await check()
        if value is not None:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def signed_in(server: RunningServer) -> AgentClient:
    client = AgentClient(server.http_url)
    await client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


async def line_channel(server: RunningServer, client: AgentClient) -> tuple[str, str]:
    suffix = secrets.token_hex(4)
    token, bot = f"access-{suffix}", f"U{suffix:0<32}"
    server.line.bots[token] = bot
    department = await admin(client, "mutation($n: String!) { createDepartment(name: $n) { id } }", n=f"Support {suffix}")
    created = await admin(
        client,
        "mutation($input: CreateLineChannelInput!) { createLineChannel(input: $input) { id } }",
        input={
            "name": "SDK on LINE",
            "channelId": "1234567890",
            "channelSecret": CHANNEL_SECRET,
            "channelAccessToken": token,
            "departmentId": department["createDepartment"]["id"],
            "mode": "PUSH",
            "plan": "STANDARD",
        },
    )
    return created["createLineChannel"]["id"], bot


async def test_an_agent_sees_a_line_message_live_across_a_drop_claims_and_answers(server: RunningServer) -> None:
    client = await signed_in(server)
    assert (await client.me()).me.email == ADMIN_EMAIL
    channel, bot = await line_channel(server, client)
    assert server.deliver_line(channel, bot, [text_event("Ulive", "m1", "hello")]) == 200
    chats = await client.chats(filter_=ChatFilterInput(customerId="Ulive"))
    chat = chats.chats.edges[0].node
    assert chat.last_message_preview == "hello"

    connections: list[ClientConnection] = []

    class Tracked(ClientConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            connections.append(self)

    live = AgentClient(server.http_url, credentials=(ADMIN_EMAIL, ADMIN_PASSWORD))
    seen: list[str] = []
    reconnects: list[int] = []

    async def follow() -> None:
        events = live.live(
            lambda after: live.chat_message_events(chat_id=chat.id, after=after, create_connection=Tracked),
            on_reconnect=reconnects.append,
        )
        async for event in events:
            if event.chat_messages.kind == "message.created":
                seen.append(event.chat_messages.message.text or "")

    task = asyncio.create_task(follow())
    try:
        await until(lambda: asyncio.sleep(0, connections or None), "the socket")
        await asyncio.sleep(0.3)
        assert server.deliver_line(channel, bot, [text_event("Ulive", "m2", "second")]) == 200
        await until(lambda: asyncio.sleep(0, True if "second" in seen else None), "the second message live")
        connections[0].transport.abort()
        # Written while the subscriber is away: delivered on resume, once each.
        assert server.deliver_line(channel, bot, [text_event("Ulive", "m3", "third")]) == 200
        assert server.deliver_line(channel, bot, [text_event("Ulive", "m4", "fourth")]) == 200
        await until(lambda: asyncio.sleep(0, True if "fourth" in seen else None), "the messages after the drop")
    finally:
        task.cancel()
    assert seen == ["second", "third", "fourth"]
    assert reconnects and len(connections) >= 2

    await client.claim_chat(id=chat.id)
    sent = await client.send_message(chat_id=chat.id, text="How can I help?")
    assert sent.send_message.direction.value == "OUTBOUND"
    await until(
        lambda: asyncio.sleep(0, True if any(p["messages"][0].get("text") == "How can I help?" for p in server.line.pushed) else None),
        "the push to LINE",
    )
    upload = Upload(filename="pixel.png", content=io.BytesIO(PIXEL), content_type="image/png")
    image = await client.send_image(chat_id=chat.id, image=upload)
    assert image.send_image.kind.value == "IMAGE"
    assert image.send_image.attachments[0].content_type == "image/png"


async def test_graphql_errors_carry_the_servers_code(server: RunningServer) -> None:
    client = await signed_in(server)
    with pytest.raises(MadoguchiError) as bad_id:
        await client.claim_chat(id="not-a-chat-id")
    assert bad_id.value.code == "INVALID_ARGUMENT"
    with pytest.raises(MadoguchiError) as anonymous:
        await AgentClient(server.http_url).me()
    assert anonymous.value.code == "UNAUTHENTICATED"
    with pytest.raises(MadoguchiError) as wrong:
        await AgentClient(server.http_url).login(ADMIN_EMAIL, "not the password")
    assert wrong.value.code == "UNAUTHENTICATED"


async def test_a_partner_links_a_helpdesk_submits_a_chat_and_it_becomes_a_ticket(server: RunningServer) -> None:
    # A second organization to be the helpdesk, provisioned by the operator.
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        operator = platform_pb2_grpc.PlatformServiceStub(channel)
        desk = await operator.CreateOrganization(
            platform_pb2.CreateOrganizationRequest(name="Desk", portal_name="desk", admin_email="boss@desk.example"),
            metadata=(("authorization", f"Bearer {OPERATOR_KEY}"),),
        )
    desk_admin = AgentClient(server.http_url)
    await desk_admin.login("boss@desk.example", desk.admin_password)
    key_query = "mutation($n: String!, $s: [String!]!) { createApiKey(name: $n, scopes: $s) { secret } }"
    scopes = ["organization:write", "tickets:read", "events:read", "chats:read"]
    desk_key = (await admin(desk_admin, key_query, n="partner", s=scopes))["createApiKey"]["secret"]
    chat_admin = await signed_in(server)
    scopes = ["organization:write", "chats:write", "tickets:write"]
    chat_key = (await admin(chat_admin, key_query, n="partner", s=scopes))["createApiKey"]["secret"]

    async with PartnerClient(server.grpc_target, desk_key) as helpdesk, PartnerClient(server.grpc_target, chat_key) as partner:
        await helpdesk.organizations.CreateDepartment(organization_pb2.CreateDepartmentRequest(name="Billing"))
        billing = (await partner.organizations.CreateDepartment(organization_pb2.CreateDepartmentRequest(name="Billing"))).department
        zsc_key = (await helpdesk.helpdesk.GenerateZscKey(helpdesk_pb2.GenerateZscKeyRequest())).zsc_key
        with pytest.raises(MadoguchiError) as wrong_key:
            await partner.helpdesk.LinkHelpdesk(
                helpdesk_pb2.LinkHelpdeskRequest(admin_email="boss@desk.example", portal_name="desk", zsc_key="zsc_wrong")
            )
        assert wrong_key.value.code == "PERMISSION_DENIED"
        link = (
            await partner.helpdesk.LinkHelpdesk(
                helpdesk_pb2.LinkHelpdeskRequest(admin_email="boss@desk.example", portal_name="desk", zsc_key=zsc_key)
            )
        ).link
        assert link.helpdesk_portal_name == "desk"
        mapped = [mapping for mapping in link.mappings if mapping.department_name == "Billing"]
        assert [mapping.mode for mapping in mapped] == [helpdesk_pb2.MAPPING_MODE_DEPARTMENT]
        await partner.helpdesk.SetChatToTicketRule(
            helpdesk_pb2.SetChatToTicketRuleRequest(
                rule=helpdesk_pb2.CHAT_TO_TICKET_RULE_MISSED,
                ticket_status=helpdesk_pb2.TICKET_STATUS_OPEN,
                recent_tickets=helpdesk_pb2.RECENT_TICKETS_SCOPE_ALL_DEPARTMENTS,
            )
        )

        # The helpdesk's ticket events, from the start of its fresh log.
        stream = helpdesk.events.StreamEvents(event_pb2.StreamEventsRequest(after_cursor=0, kinds=["ticket."]))

        async def first_event() -> event_pb2.Event:
            async for message in stream:
                return message.event
            raise AssertionError("the stream ended")

        first = asyncio.create_task(first_event())
        sent_at = Timestamp(seconds=int(time.time()) - 60)
        submission = chat_pb2.SubmitChatRequest(
            partner_chat_id="lc-1",
            visitor=chat_pb2.SubmittedVisitor(id="v-1", name="Taro", email="taro@example.com"),
            department_id=billing.id,
            attended=False,
            transcript=[
                chat_pb2.SubmittedMessage(sender=chat_pb2.MESSAGE_SENDER_VISITOR, text="Is anyone there?", send_time=sent_at)
            ],
        )
        submitted = await partner.chats.SubmitChat(submission)
        assert submitted.created and submitted.chat.status == chat_pb2.CHAT_STATUS_COMPLETED
        assert not (await partner.chats.SubmitChat(submission)).created, "idempotent on the partner's id"
        assert (await asyncio.wait_for(first, 30)).kind == "ticket.created"

        async def found() -> list[ticket_pb2.Ticket] | None:
            answer = await helpdesk.tickets.SearchTickets(ticket_pb2.SearchTicketsRequest(query="taro@example.com"))
            return list(answer.tickets) or None

        tickets = await until(found, "the automatic ticket")
        assert [(ticket.subject, ticket.portal_name) for ticket in tickets] == [("Chat with Taro", "desk")]

        empty = chat_pb2.SubmitChatRequest()
        empty.CopyFrom(submission)
        empty.partner_chat_id = "lc-2"
        del empty.transcript[:]
        with pytest.raises(MadoguchiError) as bad:
            await partner.chats.SubmitChat(empty)
        assert (bad.value.code, bad.value.field) == ("INVALID_ARGUMENT", "transcript")
        with pytest.raises(MadoguchiError) as hidden:
            await helpdesk.chats.GetChat(chat_pb2.GetChatRequest(chat_id=submitted.chat.id))
        assert hidden.value.code == "NOT_FOUND"

    # An agent converts a LINE chat by hand, on GraphQL, into the helpdesk.
    channel_id, bot = await line_channel(server, chat_admin)
    assert server.deliver_line(channel_id, bot, [text_event("Uconvert", "c1", "refund please")]) == 200
    chat = (await chat_admin.chats(filter_=ChatFilterInput(customerId="Uconvert"))).chats.edges[0].node
    with pytest.raises(MadoguchiError) as no_email:
        await chat_admin.convert_chat_to_ticket(chat_id=chat.id, input=ConvertChatInput())
    assert no_email.value.code == "FAILED_PRECONDITION"
    contact = await chat_admin.create_contact(input=ContactInput(name="Jiro", email="jiro@example.com"))
    await chat_admin.link_chat_to_contact(chat_id=chat.id, contact_id=contact.create_contact.id)
    ticket = (await chat_admin.convert_chat_to_ticket(chat_id=chat.id, input=ConvertChatInput())).convert_chat_to_ticket
    assert (ticket.portal_name, ticket.email) == ("desk", "jiro@example.com")
    search = await chat_admin.search_tickets(text="jiro@example.com", first=20)
    assert [found.id for found in search.search_tickets] == [ticket.id]
