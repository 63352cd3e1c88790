// The partner's clients: every gRPC service, typed, with the API key on
// every call and failures turned into MadoguchiError (the ErrorInfo code).
import type { DescService } from "@bufbuild/protobuf";
import { type Client, type Interceptor, type Transport, createClient } from "@connectrpc/connect";
import { MadoguchiError } from "./errors.js";
import { ChatService } from "./gen/madoguchi/v1/chat_pb.js";
import { EventService } from "./gen/madoguchi/v1/event_pb.js";
import { HelpdeskService } from "./gen/madoguchi/v1/helpdesk_pb.js";
import { OrganizationService } from "./gen/madoguchi/v1/organization_pb.js";
import { TicketService } from "./gen/madoguchi/v1/ticket_pb.js";

/** Every service a partner system calls with an organization's API key. */
export interface PartnerClients {
  organizations: Client<typeof OrganizationService>;
  helpdesk: Client<typeof HelpdeskService>;
  tickets: Client<typeof TicketService>;
  chats: Client<typeof ChatService>;
  events: Client<typeof EventService>;
}

/** Adds `authorization: Bearer <api key>` to every call. */
export function apiKeyInterceptor(apiKey: string): Interceptor {
  return (next) => async (request) => {
    request.header.set("authorization", `Bearer ${apiKey}`);
    return next(request);
  };
}

/**
 * The client with every failure rethrown as a {@link MadoguchiError} (the
 * server's code from ErrorInfo, the field from BadRequest), for unary calls
 * and streams alike. (An interceptor cannot: Connect wraps what they throw.)
 */
export function withTypedErrors<S extends DescService>(service: S, client: Client<S>): Client<S> {
  const wrapped: Record<string, unknown> = {};
  for (const method of service.methods) {
    const call = (client as Record<string, (...args: unknown[]) => unknown>)[method.localName]!.bind(client);
    wrapped[method.localName] =
      method.methodKind === "server_streaming"
        ? (...args: unknown[]) => rethrowing(call(...args) as AsyncIterable<unknown>)
        : async (...args: unknown[]) => {
            try {
              return await call(...args);
            } catch (error) {
              throw MadoguchiError.fromGrpc(error);
            }
          };
  }
  return wrapped as Client<S>;
}

async function* rethrowing<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    throw MadoguchiError.fromGrpc(error);
  }
}

/** The partner clients over a transport you made (see `./node`). */
export function partnerClients(transport: Transport): PartnerClients {
  return {
    organizations: withTypedErrors(OrganizationService, createClient(OrganizationService, transport)),
    helpdesk: withTypedErrors(HelpdeskService, createClient(HelpdeskService, transport)),
    tickets: withTypedErrors(TicketService, createClient(TicketService, transport)),
    chats: withTypedErrors(ChatService, createClient(ChatService, transport)),
    events: withTypedErrors(EventService, createClient(EventService, transport)),
  };
}
