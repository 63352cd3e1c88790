// An agent console: signs in, watches chats live (resuming by itself after a
// dropped connection), and answers every new chat.
//
//   MADOGUCHI_URL=http://127.0.0.1:8080 MADOGUCHI_EMAIL=admin@example.com \
//   MADOGUCHI_PASSWORD=… node dist/examples/agent-console.js
import { ChatEventsDocument, ClaimChatDocument, MadoguchiError, SendMessageDocument, agentClient } from "../src/node.js";

const email = process.env.MADOGUCHI_EMAIL ?? "admin@example.com";
const password = process.env.MADOGUCHI_PASSWORD ?? "";
const client = agentClient({
  url: process.env.MADOGUCHI_URL ?? "http://127.0.0.1:8080",
  // Signs in again by itself when the session nears its end.
  credentials: { email, password },
});
const session = await client.login(email, password).catch((error: unknown) => {
  if (!(error instanceof MadoguchiError)) throw error;
  console.error(`cannot sign in: ${error.code}: ${error.message}`);
  process.exit(1);
});
console.log(`signed in as ${session.agent.name}; watching chats (Ctrl-C to stop)`);

client.live(ChatEventsDocument, {}, {
  next: async (event) => {
    const chat = event.chat;
    console.log(`${event.kind}: ${chat.endUser.displayName ?? chat.endUser.customerId}: ${chat.lastMessagePreview ?? ""}`);
    if (event.kind !== "chat.created" && event.kind !== "chat.reopened") return;
    try {
      await client.request(ClaimChatDocument, { id: chat.id });
      await client.request(SendMessageDocument, { chatId: chat.id, text: "Thanks for writing! How can we help?" });
    } catch (error) {
      // Another agent was faster (ABORTED), or the chat cannot be answered.
      if (error instanceof MadoguchiError) console.log(`not answered: ${error.code} ${error.message}`);
      else throw error;
    }
  },
  reconnecting: (attempt) => console.log(`connection lost; resuming (attempt ${attempt})`),
  error: (error) => {
    console.error(`stopped: ${error.code} ${error.message}`);
    process.exit(1);
  },
});
