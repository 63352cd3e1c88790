// Every generated gRPC message, enum and service of madoguchi.v1.
export * from "./gen/madoguchi/v1/chat_pb.js";
export * from "./gen/madoguchi/v1/event_pb.js";
export * from "./gen/madoguchi/v1/helpdesk_pb.js";
export * from "./gen/madoguchi/v1/organization_pb.js";
export * from "./gen/madoguchi/v1/ticket_pb.js";
