// The agent's client: typed GraphQL operations over HTTP, sign-in and token
// renewal, image upload, and live subscriptions that resume by themselves.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { type Client as WsClient, createClient } from "graphql-ws";
import { MadoguchiError } from "./errors.js";
import { LoginDocument, type LoginMutation } from "./graphql/graphql.js";

/** How to reach the server, and as whom. */
export interface AgentClientOptions {
  /** The server's HTTP address, e.g. `http://localhost:8080`. */
  url: string;
  /** A session token, if you have one already. */
  token?: string;
  /** Signs in again with these when the token nears its end or is refused. */
  credentials?: { email: string; password: string };
  /** A WebSocket implementation where there is no global one (Node 20: `ws`). */
  webSocketImpl?: unknown;
  /** `fetch`, where the global one will not do. */
  fetch?: typeof fetch;
}

/** The session a sign-in gave. */
export type Session = LoginMutation["login"];

/** Handlers of a live subscription. */
export interface LiveHandlers<TEvent> {
  /** Every event, once, in order — also across reconnects. */
  next: (event: TEvent) => void;
  /** A failure that ends the subscription (it is not retried). */
  error?: (error: MadoguchiError) => void;
  /** Each time the connection dropped and is being resumed. */
  reconnecting?: (attempt: number) => void;
}

/** A live subscription; `close()` ends it. */
export interface Live {
  close(): void;
  /** The cursor of the last event delivered: resume from here later. */
  readonly cursor: string | undefined;
}

type Root<T> = T[keyof T];

/** How soon before its expiry a token is renewed, in milliseconds. */
const RENEW_BEFORE_MS = 60_000;

export class AgentClient {
  private token: string | undefined;
  private expiresAt: number | undefined;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: AgentClientOptions) {
    this.token = options.token;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Signs in; later calls carry the token. */
  async login(email: string, password: string): Promise<Session> {
    const answer = await this.send(LoginDocument, { email, password }, false);
    this.token = answer.login.token;
    this.expiresAt = Date.parse(answer.login.expiresAt);
    return answer.login;
  }

  /** The current session token, renewed first if it is about to expire. */
  async currentToken(): Promise<string | undefined> {
    const credentials = this.options.credentials;
    const expiring = this.expiresAt !== undefined && this.expiresAt - Date.now() < RENEW_BEFORE_MS;
    if (credentials && (this.token === undefined || expiring)) {
      await this.login(credentials.email, credentials.password);
    }
    return this.token;
  }

  /** Runs a query or mutation; throws {@link MadoguchiError} on any error. */
  async request<TResult, TVariables extends Record<string, unknown>>(
    document: TypedDocumentNode<TResult, TVariables>,
    ...[variables]: TVariables extends Record<string, never> ? [] | [TVariables] : [TVariables]
  ): Promise<TResult> {
    const given = (variables ?? {}) as TVariables;
    try {
      return await this.send(document, given, true);
    } catch (error) {
      // A refused token (revoked, expired early): sign in again, once.
      if (error instanceof MadoguchiError && error.code === "UNAUTHENTICATED" && this.options.credentials) {
        this.token = undefined;
        return this.send(document, given, true);
      }
      throw error;
    }
  }

  /**
   * Sends a mutation with files (the GraphQL multipart request): each
   * variable path in `files` (like `"image"`) is sent as that file.
   */
  async upload<TResult, TVariables extends Record<string, unknown>>(
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
    files: Record<string, Blob>,
  ): Promise<TResult> {
    const form = new FormData();
    const withNulls: Record<string, unknown> = { ...variables };
    const map: Record<string, string[]> = {};
    Object.keys(files).forEach((path, index) => {
      withNulls[path] = null;
      map[String(index)] = [`variables.${path}`];
    });
    form.append("operations", JSON.stringify({ query: print(document), variables: withNulls }));
    form.append("map", JSON.stringify(map));
    Object.values(files).forEach((file, index) => form.append(String(index), file, fileName(file, index)));
    return this.post(form, undefined, true) as Promise<TResult>;
  }

  /**
   * Follows a subscription (`ChatEventsDocument`, `ChatMessageEventsDocument`)
   * over graphql-transport-ws. When the connection drops it reconnects with
   * backoff and subscribes again with `after:` the last delivered cursor, so
   * nothing is lost and nothing is delivered twice. Pass `after` to start
   * from an earlier cursor.
   */
  live<TResult, TVariables extends { after?: string | null }>(
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
    handlers: LiveHandlers<Root<TResult>>,
  ): Live {
    let cursor = variables.after ?? undefined;
    let closed = false;
    let current: WsClient | undefined;
    const wsUrl = this.options.url.replace(/^http/, "ws").replace(/\/$/, "") + "/graphql/ws";
    const run = async () => {
      for (let attempt = 0; !closed; attempt++) {
        if (attempt > 0) {
          handlers.reconnecting?.(attempt);
          await sleep(Math.min(250 * 2 ** (attempt - 1), 10_000));
          if (closed) return;
        }
        const token = await this.currentToken().catch(() => this.token);
        const client = createClient({
          url: wsUrl,
          webSocketImpl: this.options.webSocketImpl,
          connectionParams: token ? { authorization: `Bearer ${token}` } : {},
          retryAttempts: 0,
          lazy: true,
        });
        current = client;
        const outcome = await new Promise<"closed" | "lost" | MadoguchiError>((resolve) => {
          client.subscribe<TResult>(
            { query: print(document), variables: { ...variables, after: cursor ?? null } },
            {
              next: (result) => {
                if (result.errors?.length) {
                  resolve(MadoguchiError.fromGraphql(result.errors[0]!));
                  return;
                }
                const data = result.data as TResult | undefined;
                if (!data) return;
                const event = Object.values(data as object)[0] as Root<TResult> & { cursor?: string };
                if (event.cursor) cursor = event.cursor;
                attempt = 0;
                handlers.next(event);
              },
              error: (error) => resolve(closed ? "closed" : fatal(error) ?? "lost"),
              complete: () => resolve(closed ? "closed" : "lost"),
            },
          );
        });
        void client.dispose();
        if (outcome === "closed") return;
        if (outcome instanceof MadoguchiError) {
          if (outcome.code === "UNAUTHENTICATED" && this.options.credentials) {
            this.token = undefined;
            continue;
          }
          closed = true;
          handlers.error?.(outcome);
          return;
        }
      }
    };
    void run();
    return {
      close: () => {
        closed = true;
        void current?.dispose();
      },
      get cursor() {
        return cursor;
      },
    };
  }

  private async send<TResult, TVariables>(
    document: TypedDocumentNode<TResult, TVariables>,
    variables: TVariables,
    authenticated: boolean,
  ): Promise<TResult> {
    const body = JSON.stringify({ query: print(document), variables });
    return this.post(body, "application/json", authenticated) as Promise<TResult>;
  }

  private async post(body: BodyInit, contentType: string | undefined, authenticated: boolean): Promise<unknown> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (contentType) headers["content-type"] = contentType;
    const token = authenticated ? await this.currentToken() : undefined;
    if (token) headers.authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await this.fetch(this.options.url.replace(/\/$/, "") + "/graphql", { method: "POST", headers, body });
    } catch (error) {
      throw new MadoguchiError(`cannot reach ${this.options.url}: ${String(error)}`, "UNAVAILABLE", undefined, error);
    }
    const answer = (await response.json().catch(() => undefined)) as
      | { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] }
      | undefined;
    if (answer?.errors?.length) throw MadoguchiError.fromGraphql(answer.errors[0]!);
    if (!response.ok || answer?.data === undefined) {
      throw new MadoguchiError(`the server answered HTTP ${response.status}`, httpCode(response.status));
    }
    return answer.data;
  }
}

/** A GraphQL error that came over the socket and is not worth retrying. */
function fatal(error: unknown): MadoguchiError | undefined {
  if (Array.isArray(error) && error[0]?.message) return MadoguchiError.fromGraphql(error[0]);
  const code = (error as { code?: number } | undefined)?.code;
  // 4401: the session ended (expired, revoked); 4403: forbidden.
  if (code === 4401) return new MadoguchiError("the session ended", "UNAUTHENTICATED", undefined, error);
  if (code === 4403) return new MadoguchiError("forbidden", "PERMISSION_DENIED", undefined, error);
  if (code === 4400) return new MadoguchiError("the server refused the subscription", "INVALID_ARGUMENT", undefined, error);
  return undefined;
}

function httpCode(status: number): string {
  if (status === 401) return "UNAUTHENTICATED";
  if (status === 403) return "PERMISSION_DENIED";
  if (status === 413) return "INVALID_ARGUMENT";
  if (status >= 500) return "UNAVAILABLE";
  return "INVALID_ARGUMENT";
}

function fileName(file: Blob, index: number): string {
  return (file as Blob & { name?: string }).name ?? `file-${index}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
