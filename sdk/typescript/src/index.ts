// Madoguchi's TypeScript SDK. Browser-safe: the agent's GraphQL client, the
// typed operations, the gRPC service descriptors and typed errors. Node's
// gRPC transport and WebSocket are in `@madoguchi/sdk/node`.
export { AgentClient } from "./agent.js";
export type { AgentClientOptions, Live, LiveHandlers, Session } from "./agent.js";
export { MadoguchiError } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { apiKeyInterceptor, partnerClients, withTypedErrors } from "./partner.js";
export type { PartnerClients } from "./partner.js";
export * from "./graphql/graphql.js";
export * as pb from "./pb.js";
