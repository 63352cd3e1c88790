// A partner script: links the organization to a helpdesk portal with the
// portal's ZSC key, submits a chat from its own channel, and converts it to
// a ticket.
//
//   MADOGUCHI_GRPC=http://127.0.0.1:50051 MADOGUCHI_API_KEY=mdg_… \
//   HELPDESK_PORTAL=desk HELPDESK_ADMIN=boss@desk.example ZSC_KEY=zsc_… \
//   node dist/examples/partner.js
import { MadoguchiError, connectPartner, pb } from "../src/node.js";

const partner = connectPartner(process.env.MADOGUCHI_GRPC ?? "http://127.0.0.1:50051", process.env.MADOGUCHI_API_KEY ?? "");
try {
  const { link } = await partner.helpdesk.linkHelpdesk({
    portalName: process.env.HELPDESK_PORTAL ?? "desk",
    adminEmail: process.env.HELPDESK_ADMIN ?? "boss@desk.example",
    zscKey: process.env.ZSC_KEY ?? "",
  });
  console.log(`linked to ${link?.helpdeskPortalName} (${link?.helpdeskOrganizationName})`);

  // The chat's department: the first of the organization's (make one if none).
  const { departments } = await partner.organizations.listDepartments({});
  const department = departments[0] ?? (await partner.organizations.createDepartment({ name: "Support" })).department!;

  const now = BigInt(Math.floor(Date.now() / 1000));
  const { chat, created } = await partner.chats.submitChat({
    partnerChatId: `example-${now}`,
    visitor: { id: "visitor-1", name: "Hanako", email: "hanako@example.com" },
    departmentId: department.id,
    attended: true,
    transcript: [
      { sender: pb.MessageSender.VISITOR, text: "My order has not arrived", sendTime: { seconds: now - 120n, nanos: 0 } },
      { sender: pb.MessageSender.AGENT, text: "Let me check that for you", sendTime: { seconds: now - 60n, nanos: 0 } },
    ],
  });
  console.log(`chat ${chat?.id} ${created ? "submitted" : "was submitted before"}`);

  const { ticket } = await partner.tickets.convertChat({ chatId: chat!.id, subject: "Order has not arrived" });
  console.log(`ticket #${ticket?.number} in portal ${ticket?.portalName}: ${ticket?.subject}`);
} catch (error) {
  if (!(error instanceof MadoguchiError)) throw error;
  // The server's code (ErrorInfo) and, for a bad request, the field.
  console.error(`failed: ${error.code}${error.field ? ` (${error.field})` : ""}: ${error.message}`);
  process.exitCode = 1;
}
