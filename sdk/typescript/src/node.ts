// Node's side of the SDK: gRPC over HTTP/2 and a WebSocket for Node 20.
import { createGrpcTransport } from "@connectrpc/connect-node";
import WebSocket from "ws";
import { AgentClient, type AgentClientOptions } from "./agent.js";
import { apiKeyInterceptor, type PartnerClients, partnerClients } from "./partner.js";

export * from "./index.js";

/** The partner clients over gRPC (HTTP/2), e.g. `http://127.0.0.1:50051`. */
export function connectPartner(grpcUrl: string, apiKey: string): PartnerClients {
  const transport = createGrpcTransport({
    baseUrl: grpcUrl,
    interceptors: [apiKeyInterceptor(apiKey)],
  });
  return partnerClients(transport);
}

/** An agent client whose subscriptions use the `ws` package. */
export function agentClient(options: AgentClientOptions): AgentClient {
  return new AgentClient({ webSocketImpl: WebSocket, ...options });
}
