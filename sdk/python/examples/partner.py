"""A partner script: links the organization to a helpdesk portal with the
portal's ZSC key, submits a chat from its own channel, and converts it to a
ticket.

    MADOGUCHI_GRPC=127.0.0.1:50051 MADOGUCHI_API_KEY=mdg_… \\
    HELPDESK_PORTAL=desk HELPDESK_ADMIN=boss@desk.example ZSC_KEY=zsc_… \\
    python examples/partner.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from google.protobuf.timestamp_pb2 import Timestamp

from madoguchi import MadoguchiError, PartnerClient
from madoguchi.v1 import chat_pb2, helpdesk_pb2, organization_pb2, ticket_pb2


async def main() -> None:
    target = os.environ.get("MADOGUCHI_GRPC", "127.0.0.1:50051")
    async with PartnerClient(target, os.environ.get("MADOGUCHI_API_KEY", "")) as partner:
        link = await partner.helpdesk.LinkHelpdesk(
            helpdesk_pb2.LinkHelpdeskRequest(
                portal_name=os.environ.get("HELPDESK_PORTAL", "desk"),
                admin_email=os.environ.get("HELPDESK_ADMIN", "boss@desk.example"),
                zsc_key=os.environ.get("ZSC_KEY", ""),
            )
        )
        print(f"linked to {link.link.helpdesk_portal_name} ({link.link.helpdesk_organization_name})")

        # The chat's department: the first of the organization's (made if none).
        departments = (await partner.organizations.ListDepartments(organization_pb2.ListDepartmentsRequest())).departments
        if departments:
            department = departments[0]
        else:
            made = await partner.organizations.CreateDepartment(organization_pb2.CreateDepartmentRequest(name="Support"))
            department = made.department

        now = int(time.time())
        submitted = await partner.chats.SubmitChat(
            chat_pb2.SubmitChatRequest(
                partner_chat_id=f"example-{now}",
                visitor=chat_pb2.SubmittedVisitor(id="visitor-1", name="Hanako", email="hanako@example.com"),
                department_id=department.id,
                attended=True,
                transcript=[
                    chat_pb2.SubmittedMessage(
                        sender=chat_pb2.MESSAGE_SENDER_VISITOR, text="My order has not arrived", send_time=Timestamp(seconds=now - 120)
                    ),
                    chat_pb2.SubmittedMessage(
                        sender=chat_pb2.MESSAGE_SENDER_AGENT, text="Let me check that for you", send_time=Timestamp(seconds=now - 60)
                    ),
                ],
            )
        )
        print(f"chat {submitted.chat.id} {'submitted' if submitted.created else 'was submitted before'}")

        converted = await partner.tickets.ConvertChat(
            ticket_pb2.ConvertChatRequest(chat_id=submitted.chat.id, subject="Order has not arrived")
        )
        print(f"ticket #{converted.ticket.number} in portal {converted.ticket.portal_name}: {converted.ticket.subject}")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except MadoguchiError as error:
        # The server's code (ErrorInfo) and, for a bad request, the field.
        sys.exit(f"failed: {error.code}{f' ({error.field})' if error.field else ''}: {error.message}")
