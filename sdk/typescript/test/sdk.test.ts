// Every SDK operation against the real server: sign-in, a signed LINE
// webhook seen live, a dropped subscription resumed without loss, claim and
// reply, image upload, gRPC linking with a ZSC key, SubmitChat, ticket
// conversion, a streamed event, and the error codes of both surfaces.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { parse } from "graphql";
import WebSocket from "ws";
import {
  AgentClient,
  ChatMessageEventsDocument,
  ChatsDocument,
  ClaimChatDocument,
  ConvertChatToTicketDocument,
  CreateContactDocument,
  LinkChatToContactDocument,
  MadoguchiError,
  MeDocument,
  SearchTicketsDocument,
  SendImageDocument,
  SendMessageDocument,
  agentClient,
  connectPartner,
  pb,
} from "../src/node.js";
import { PlatformService } from "../src/gen/madoguchi/v1/platform_pb.js";
import { ADMIN_EMAIL, ADMIN_PASSWORD, CHANNEL_SECRET, OPERATOR_KEY, TestServer, textEvent } from "./harness.js";


let server: TestServer;
before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server?.stop();
});

// Setup the curated operations leave to admins' tools.
const admin = {
  department: parse("mutation($name: String!) { createDepartment(name: $name) { id } }") as TypedDocumentNode<
    { createDepartment: { id: string } },
    { name: string }
  >,
  lineChannel: parse(
    "mutation($input: CreateLineChannelInput!) { createLineChannel(input: $input) { id } }",
  ) as TypedDocumentNode<{ createLineChannel: { id: string } }, { input: Record<string, unknown> }>,
  apiKey: parse(
    "mutation($name: String!, $scopes: [String!]!) { createApiKey(name: $name, scopes: $scopes) { secret } }",
  ) as TypedDocumentNode<{ createApiKey: { secret: string } }, { name: string; scopes: string[] }>,
};

async function signedIn(): Promise<AgentClient> {
  const client = agentClient({ url: server.httpUrl });
  await client.login(ADMIN_EMAIL, ADMIN_PASSWORD);
  return client;
}

async function lineChannel(client: AgentClient): Promise<{ id: string; bot: string; departmentId: string }> {
  const suffix = Math.random().toString(16).slice(2, 10);
  const accessToken = `access-${suffix}`;
  const bot = `U${suffix.padEnd(32, "0")}`;
  server.line.addChannel(accessToken, bot);
  const department = await client.request(admin.department, { name: `Support ${suffix}` });
  const channel = await client.request(admin.lineChannel, {
    input: {
      name: "SDK on LINE",
      channelId: "1234567890",
      channelSecret: CHANNEL_SECRET,
      channelAccessToken: accessToken,
      departmentId: department.createDepartment.id,
      mode: "PUSH",
      plan: "STANDARD",
    },
  });
  return { id: channel.createLineChannel.id, bot, departmentId: department.createDepartment.id };
}

async function until<T>(check: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("an agent signs in, sees a LINE message live, claims the chat and answers", async () => {
  const client = await signedIn();
  assert.equal((await client.request(MeDocument)).me.email, ADMIN_EMAIL);
  const channel = await lineChannel(client);
  assert.equal(await server.deliverLine(channel.id, channel.bot, [textEvent("Ulive", "m1", "hello")]), 200);
  const chats = await client.request(ChatsDocument, { filter: { customerId: "Ulive" } });
  const chat = chats.chats.edges[0]!.node;
  assert.equal(chat.lastMessagePreview, "hello");

  // Live messages of the chat; one socket drop in the middle loses nothing.
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      sockets.push(this);
    }
  }
  const live = new AgentClient({ url: server.httpUrl, webSocketImpl: Tracked, credentials: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } });
  const seen: string[] = [];
  let reconnects = 0;
  const subscription = live.live(ChatMessageEventsDocument, { chatId: chat.id }, {
    next: (event) => {
      if (event.kind === "message.created") seen.push(event.message.text ?? "");
    },
    reconnecting: () => reconnects++,
  });
  await until(() => (sockets.length > 0 && sockets[0]!.readyState === WebSocket.OPEN ? true : undefined), "the socket");
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(await server.deliverLine(channel.id, channel.bot, [textEvent("Ulive", "m2", "second")]), 200);
  await until(() => (seen.includes("second") ? true : undefined), "the second message live");
  sockets[0]!.terminate();
  // Written while the subscriber is away: delivered on resume, once each.
  assert.equal(await server.deliverLine(channel.id, channel.bot, [textEvent("Ulive", "m3", "third")]), 200);
  assert.equal(await server.deliverLine(channel.id, channel.bot, [textEvent("Ulive", "m4", "fourth")]), 200);
  await until(() => (seen.includes("fourth") ? true : undefined), "the messages after the drop");
  subscription.close();
  assert.deepEqual(seen, ["second", "third", "fourth"]);
  assert.ok(reconnects >= 1, "it reconnected");
  assert.ok(sockets.length >= 2, "on a new socket");

  await client.request(ClaimChatDocument, { id: chat.id });
  const sent = await client.request(SendMessageDocument, { chatId: chat.id, text: "How can I help?" });
  assert.equal(sent.sendMessage.direction, "OUTBOUND");
  await until(() => server.line.pushed.find((push) => push.messages[0]?.text === "How can I help?"), "the push to LINE");
  // An image, as a multipart upload.
  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==",
    "base64",
  );
  const image = await client.upload(SendImageDocument, { chatId: chat.id, image: new Blob() }, {
    image: new File([png], "pixel.png", { type: "image/png" }),
  });
  assert.equal(image.sendImage.kind, "IMAGE");
  assert.equal(image.sendImage.attachments[0]?.contentType, "image/png");
});

test("GraphQL errors carry the server's code and field", async () => {
  const client = await signedIn();
  await assert.rejects(client.request(ClaimChatDocument, { id: "not-a-chat-id" }), (error: unknown) => {
    assert.ok(error instanceof MadoguchiError);
    assert.equal(error.code, "INVALID_ARGUMENT");
    return true;
  });
  const anonymous = new AgentClient({ url: server.httpUrl });
  await assert.rejects(anonymous.request(MeDocument), (error: unknown) => {
    assert.ok(error instanceof MadoguchiError);
    assert.equal(error.code, "UNAUTHENTICATED");
    return true;
  });
  await assert.rejects(anonymous.login(ADMIN_EMAIL, "not the password"), (error: unknown) => {
    assert.ok(error instanceof MadoguchiError && error.code === "UNAUTHENTICATED");
    return true;
  });
});

test("a partner links a helpdesk with a ZSC key, submits a chat, and it becomes a ticket", async () => {
  // A second organization to be the helpdesk, provisioned by the operator.
  const operator = createClient(
    PlatformService,
    createGrpcTransport({
      baseUrl: server.grpcUrl,
      interceptors: [(next) => (request) => (request.header.set("authorization", `Bearer ${OPERATOR_KEY}`), next(request))],
    }),
  );
  const desk = await operator.createOrganization({ name: "Desk", portalName: "desk", adminEmail: "boss@desk.example" });
  const deskAdmin = agentClient({ url: server.httpUrl });
  await deskAdmin.login("boss@desk.example", desk.adminPassword);
  const deskKey = (await deskAdmin.request(admin.apiKey, { name: "partner", scopes: ["organization:write", "tickets:read", "events:read", "chats:read"] })).createApiKey.secret;
  const chatAdmin = await signedIn();
  const chatKey = (await chatAdmin.request(admin.apiKey, {
    name: "partner",
    scopes: ["organization:write", "chats:write", "tickets:write"],
  })).createApiKey.secret;
  const helpdesk = connectPartner(server.grpcUrl, deskKey);
  const partner = connectPartner(server.grpcUrl, chatKey);

  await helpdesk.organizations.createDepartment({ name: "Billing" });
  const billing = (await partner.organizations.createDepartment({ name: "Billing" })).department!;
  const { zscKey } = await helpdesk.helpdesk.generateZscKey({});
  // A wrong key is refused with its code, through ErrorInfo.
  await assert.rejects(
    partner.helpdesk.linkHelpdesk({ adminEmail: "boss@desk.example", portalName: "desk", zscKey: "zsc_wrong" }),
    (error: unknown) => error instanceof MadoguchiError && error.code === "PERMISSION_DENIED",
  );
  const link = (await partner.helpdesk.linkHelpdesk({ adminEmail: "boss@desk.example", portalName: "desk", zscKey })).link!;
  assert.equal(link.helpdeskPortalName, "desk");
  // Same-name departments are mapped; the others wait as CHOOSE_AS_NEEDED.
  const billingMapping = link.mappings.find((mapping) => mapping.departmentName === "Billing");
  assert.equal(billingMapping?.mode, pb.MappingMode.DEPARTMENT);
  assert.ok(link.mappings.filter((mapping) => mapping !== billingMapping).every((mapping) => mapping.mode === pb.MappingMode.CHOOSE_AS_NEEDED));
  await partner.helpdesk.setChatToTicketRule({
    rule: pb.ChatToTicketRule.MISSED,
    ticketStatus: pb.TicketStatus.OPEN,
    recentTickets: pb.RecentTicketsScope.ALL_DEPARTMENTS,
  });

  // The helpdesk's stream of ticket events, from the start of its log (a
  // fresh portal's: nothing can be missed however late the stream starts).
  const stream = helpdesk.events.streamEvents({ afterCursor: 0n, kinds: ["ticket."] });
  const firstEvent = (async () => {
    for await (const message of stream) return message.event;
    return undefined;
  })();

  const now = BigInt(Math.floor(Date.now() / 1000));
  const submission = create(pb.SubmitChatRequestSchema, {
    partnerChatId: "lc-1",
    visitor: { id: "v-1", name: "Taro", email: "taro@example.com" },
    departmentId: billing.id,
    attended: false,
    transcript: [{ sender: pb.MessageSender.VISITOR, text: "Is anyone there?", sendTime: { seconds: now - 60n, nanos: 0 } }],
  });
  const submitted = await partner.chats.submitChat(submission);
  assert.equal(submitted.created, true);
  assert.equal(submitted.chat?.status, pb.ChatStatus.COMPLETED);
  assert.equal((await partner.chats.submitChat(submission)).created, false, "idempotent on the partner's id");
  const event = await firstEvent;
  assert.equal(event?.kind, "ticket.created");
  const found = await until(async () => {
    const answer = await helpdesk.tickets.searchTickets({ query: "taro@example.com" });
    return answer.tickets.length ? answer.tickets : undefined;
  }, "the automatic ticket");
  assert.equal(found.length, 1);
  assert.equal(found[0]!.subject, "Chat with Taro");
  assert.equal(found[0]!.portalName, "desk");

  // A bad submission names its field; a stranger's chat is not found.
  await assert.rejects(partner.chats.submitChat({ ...submission, partnerChatId: "lc-2", transcript: [] }), (error: unknown) => {
    assert.ok(error instanceof MadoguchiError);
    assert.equal(error.code, "INVALID_ARGUMENT");
    assert.equal(error.field, "transcript");
    return true;
  });
  await assert.rejects(
    helpdesk.chats.getChat({ chatId: submitted.chat!.id }),
    (error: unknown) => error instanceof MadoguchiError && error.code === "NOT_FOUND",
  );

  // An agent converts a LINE chat by hand, on GraphQL, into the helpdesk.
  const channel = await lineChannel(chatAdmin);
  await partner.organizations.getOrganization({});
  assert.equal(await server.deliverLine(channel.id, channel.bot, [textEvent("Uconvert", "c1", "refund please")]), 200);
  const chat = (await chatAdmin.request(ChatsDocument, { filter: { customerId: "Uconvert" } })).chats.edges[0]!.node;
  await assert.rejects(chatAdmin.request(ConvertChatToTicketDocument, { chatId: chat.id }), (error: unknown) =>
    error instanceof MadoguchiError && error.code === "FAILED_PRECONDITION",
  );
  const contact = await chatAdmin.request(CreateContactDocument, { input: { name: "Jiro", email: "jiro@example.com" } });
  await chatAdmin.request(LinkChatToContactDocument, { chatId: chat.id, contactId: contact.createContact.id });
  const ticket = (await chatAdmin.request(ConvertChatToTicketDocument, { chatId: chat.id })).convertChatToTicket;
  assert.equal(ticket.portalName, "desk");
  assert.equal(ticket.email, "jiro@example.com");
  const search = await chatAdmin.request(SearchTicketsDocument, { text: "jiro@example.com" });
  assert.deepEqual(search.searchTickets.map((found) => found.id), [ticket.id]);
});
