// Typed errors carrying the server's error code, the same on both surfaces:
// GraphQL's `extensions.code` / `extensions.field`, and gRPC's
// `google.rpc.ErrorInfo` reason / `google.rpc.BadRequest` field.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** Madoguchi's error codes (`INVALID_ARGUMENT`, `NOT_FOUND`, …). */
export type ErrorCode =
  | "NOT_FOUND"
  | "INVALID_ARGUMENT"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  | "CONFLICT"
  | "ABORTED"
  | "FAILED_PRECONDITION"
  | "RESOURCE_EXHAUSTED"
  | "UNAVAILABLE"
  | "INTERNAL"
  | (string & {});

/** An error the server answered with, or a transport failure (`UNAVAILABLE`). */
export class MadoguchiError extends Error {
  override readonly name = "MadoguchiError";

  constructor(
    message: string,
    /** The server's code: branch on this, not on the message. */
    readonly code: ErrorCode,
    /** The request field it is about, when one is wrong. */
    readonly field?: string,
    /** The underlying error (a ConnectError, a fetch failure, …). */
    readonly cause?: unknown,
  ) {
    super(message);
  }

  /** Reads a GraphQL error object (`{ message, extensions }`). */
  static fromGraphql(error: { message: string; extensions?: Record<string, unknown> }): MadoguchiError {
    const code = typeof error.extensions?.code === "string" ? error.extensions.code : "INTERNAL";
    const field = typeof error.extensions?.field === "string" ? error.extensions.field : undefined;
    return new MadoguchiError(error.message, code, field, error);
  }

  /** Reads a gRPC failure: the ErrorInfo reason, or the status code's name. */
  static fromGrpc(error: unknown): MadoguchiError {
    if (error instanceof MadoguchiError) return error;
    const connect = ConnectError.from(error);
    const info = connect.findDetails(ErrorInfoSchema)[0];
    const violation = connect.findDetails(BadRequestSchema)[0]?.fieldViolations[0];
    const code = info?.reason || codeName(connect.code);
    return new MadoguchiError(connect.rawMessage, code, violation?.field, connect);
  }
}

function codeName(code: Code): string {
  // Code.NotFound → "NOT_FOUND"
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
