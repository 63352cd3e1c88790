// Starts the real server binary on free ports with a fresh SQLite database
// and a fake LINE API on loopback, for the SDK's tests.
import { type ChildProcess, spawn } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

export const ADMIN_EMAIL = "admin@example.com";
export const ADMIN_PASSWORD = "an admin password for the sdk tests";
export const CHANNEL_SECRET = "0123456789abcdef0123456789abcdef";
/** The platform operator's key the server is started with. */
export const OPERATOR_KEY = "an operator key for the sdk tests, long enough";

/** A fake of the LINE Messaging API: bot info, push, reply, profiles. */
export class FakeLine {
  readonly pushed: { to: string; messages: { type: string; text?: string }[] }[] = [];
  readonly replied: { replyToken: string; messages: { type: string; text?: string }[] }[] = [];
  private readonly bots = new Map<string, string>();
  private server = createServer((request, response) => void this.route(request, response));
  url = "";

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Registers a channel: its access token and bot user id. */
  addChannel(accessToken: string, botUserId: string): void {
    this.bots.set(accessToken, botUserId);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
    const token = (request.headers.authorization ?? "").replace(/^Bearer /, "");
    const bot = this.bots.get(token);
    const answer = (status: number, value: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(value));
    };
    if (!bot) return answer(401, { message: "Authentication failed. Confirm that the access token in the authorization header is valid." });
    const path = (request.url ?? "").split("?")[0];
    if (request.method === "GET" && path === "/v2/bot/info") {
      return answer(200, { userId: bot, basicId: "@123abcde", displayName: "SDK Support", chatMode: "chat", markAsReadMode: "manual" });
    }
    if (request.method === "POST" && path === "/v2/bot/message/push") {
      this.pushed.push(body);
      return answer(200, { sentMessages: body.messages.map(() => ({ id: randomUUID(), quoteToken: "q" })) });
    }
    if (request.method === "POST" && path === "/v2/bot/message/reply") {
      this.replied.push(body);
      return answer(200, { sentMessages: body.messages.map(() => ({ id: randomUUID(), quoteToken: "q" })) });
    }
    if (request.method === "GET" && path?.startsWith("/v2/bot/profile/")) {
      return answer(200, { userId: path.split("/").pop(), displayName: "Hanako", language: "ja" });
    }
    if (request.method === "GET" && path === "/v2/bot/message/quota") return answer(200, { type: "none" });
    if (request.method === "GET" && path === "/v2/bot/message/quota/consumption") return answer(200, { totalUsage: 0 });
    return answer(404, { message: "Not found" });
  }
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The server binary: `MADOGUCHI_BIN`, or the debug build in the cargo target dir. */
function binary(): string {
  if (process.env.MADOGUCHI_BIN) return process.env.MADOGUCHI_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache", "madoguchi-target");
  return join(target, "debug", "madoguchi");
}

/** A running server. */
export class TestServer {
  private constructor(
    private readonly process: ChildProcess,
    private readonly dir: string,
    readonly httpUrl: string,
    readonly grpcUrl: string,
    readonly line: FakeLine,
    private readonly output: string[],
  ) {}

  static async start(): Promise<TestServer> {
    const line = new FakeLine();
    await line.start();
    const dir = mkdtempSync(join(tmpdir(), "madoguchi-sdk-"));
    const [http, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
    const child = spawn(binary(), [], {
      cwd: dir,
      env: {
        // Nothing of the caller's own MADOGUCHI_* settings leaks in.
        ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("MADOGUCHI_"))),
        MADOGUCHI_DATABASE_URL: `sqlite://${join(dir, "madoguchi.db")}?mode=rwc`,
        MADOGUCHI_DATA_DIR: dir,
        MADOGUCHI_HTTP_ADDR: `127.0.0.1:${http}`,
        MADOGUCHI_GRPC_ADDR: `127.0.0.1:${grpc}`,
        MADOGUCHI_METRICS_ADDR: `127.0.0.1:${metrics}`,
        MADOGUCHI_PUBLIC_BASE_URL: `http://127.0.0.1:${http}`,
        MADOGUCHI_BOOTSTRAP_ADMIN_EMAIL: ADMIN_EMAIL,
        MADOGUCHI_BOOTSTRAP_ADMIN_PASSWORD: ADMIN_PASSWORD,
        MADOGUCHI_LINE_API_BASE: line.url,
        MADOGUCHI_LINE_DATA_BASE: line.url,
        MADOGUCHI_SHUTDOWN_GRACE_SECONDS: "2",
        MADOGUCHI_PLATFORM_OPERATOR_KEY: OPERATOR_KEY,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output: string[] = [];
    child.stdout?.on("data", (chunk) => output.push(String(chunk)));
    child.stderr?.on("data", (chunk) => output.push(String(chunk)));
    const server = new TestServer(child, dir, `http://127.0.0.1:${http}`, `http://127.0.0.1:${grpc}`, line, output);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the server exited: ${output.join("")}`);
      const ready = await fetch(`${server.httpUrl}/readyz`).then((response) => response.ok, () => false);
      if (ready) return server;
      if (Date.now() > deadline) throw new Error(`the server did not become ready: ${output.join("")}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Posts a LINE webhook signed with the channel secret; returns the status. */
  async deliverLine(channelId: string, botUserId: string, events: unknown[]): Promise<number> {
    const body = JSON.stringify({ destination: botUserId, events });
    const signature = createHmac("sha256", CHANNEL_SECRET).update(body).digest("base64");
    const response = await fetch(`${this.httpUrl}/webhooks/line/${channelId}`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-line-signature": signature },
      body,
    });
    return response.status;
  }

  async stop(): Promise<void> {
    this.process.kill("SIGTERM");
    await new Promise((resolve) => (this.process.exitCode !== null ? resolve(undefined) : this.process.once("exit", resolve)));
    await this.line.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A LINE text message event from `user`. */
export function textEvent(user: string, messageId: string, text: string): unknown {
  return {
    type: "message",
    mode: "active",
    timestamp: Date.now(),
    webhookEventId: `01SDK${messageId}`,
    deliveryContext: { isRedelivery: false },
    source: { type: "user", userId: user },
    replyToken: `reply-${messageId}`,
    message: { id: messageId, type: "text", quoteToken: "q", text },
  };
}
