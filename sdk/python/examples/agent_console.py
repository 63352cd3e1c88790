"""An agent console: signs in, watches chats live (resuming by itself after a
dropped connection), and answers every new chat.

    MADOGUCHI_URL=http://127.0.0.1:8080 MADOGUCHI_EMAIL=admin@example.com \\
    MADOGUCHI_PASSWORD=… python examples/agent_console.py
"""

from __future__ import annotations

import asyncio
import os
import sys

from madoguchi import AgentClient, MadoguchiError


async def main() -> None:
    email = os.environ.get("MADOGUCHI_EMAIL", "admin@example.com")
    password = os.environ.get("MADOGUCHI_PASSWORD", "")
    # With credentials it signs in again by itself when the session nears its end.
    client = AgentClient(os.environ.get("MADOGUCHI_URL", "http://127.0.0.1:8080"), credentials=(email, password))
    try:
        session = await client.login(email, password)
    except MadoguchiError as error:
        sys.exit(f"cannot sign in: {error.code}: {error.message}")
    print(f"signed in as {session.login.agent.name}; watching chats (Ctrl-C to stop)")
    events = client.live(
        lambda after: client.chat_events(after=after),
        on_reconnect=lambda attempt: print(f"connection lost; resuming (attempt {attempt})"),
    )
    async for event in events:
        change = event.chat_events
        chat = change.chat
        print(f"{change.kind}: {chat.end_user.display_name or chat.end_user.customer_id}: {chat.last_message_preview or ''}")
        if change.kind not in ("chat.created", "chat.reopened"):
            continue
        try:
            await client.claim_chat(id=chat.id)
            await client.send_message(chat_id=chat.id, text="Thanks for writing! How can we help?")
        except MadoguchiError as error:
            # Another agent was faster (ABORTED), or the chat cannot be answered.
            print(f"not answered: {error.code} {error.message}")


if __name__ == "__main__":
    asyncio.run(main())
