/**
 * Every failure the library reports, as tagged errors in the error channel.
 *
 * Each error has a `message` that reads well in a log line; match on `_tag`
 * with `Effect.catchTag` to handle one kind.
 *
 * @module
 */
import * as Schema from "effect/Schema"
import { FlightRecord } from "./FlightRecord.js"
import { redactArgv } from "./internal/redact.js"

/** What led to a machine's failure (see `FlightRecord`); set on errors a machine's operations fail with. */
const flightRecord = Schema.optional(FlightRecord)

/** Why a QMP greeting could not be obtained. */
export class QMPGreetingError extends Schema.TaggedError<QMPGreetingError>()("QMPGreetingError", {
  reason: Schema.Literal("Timeout", "Malformed", "Closed", "Negotiation"),
  detail: Schema.String,
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `QMP greeting failed (${this.reason}): ${this.detail}`
  }
}

/**
 * The peer sent something that is not valid QMP: bytes that are not JSON, a
 * message over the size cap, a message of no known shape, a reply without an
 * id or for an id nobody asked. `fatal` errors end the session.
 */
export class QMPProtocolError extends Schema.TaggedError<QMPProtocolError>()("QMPProtocolError", {
  reason: Schema.Literal("Garbage", "Oversize", "Malformed", "MissingId", "UnknownId"),
  detail: Schema.String,
  fatal: Schema.Boolean,
  /** A prefix of the offending bytes, for the log. */
  excerpt: Schema.optional(Schema.String),
  /** How many occurrences this one error stands for (garbage lines of one chunk are reported together). */
  count: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `QMP protocol error (${this.reason}${this.fatal ? ", fatal" : ""}): ${this.detail}${
      this.count !== undefined && this.count > 1 ? ` (${this.count} times)` : ""
    }${this.excerpt !== undefined ? `: ${JSON.stringify(this.excerpt)}` : ""}`
  }
}

/**
 * A command could not be sent: its arguments cannot be serialised as JSON
 * (`Unserializable`: BigInt, a cycle, a getter that throws), or QEMU's JSON
 * parser would reject them with an error that has no id, which no reply could
 * be matched to (`LoneSurrogate`, `TooDeep`: nesting past 1024, `TooLarge`:
 * past 2M tokens or 64 MiB). Nothing was sent; the session goes on.
 */
export class QMPEncodeError extends Schema.TaggedError<QMPEncodeError>()("QMPEncodeError", {
  command: Schema.String,
  reason: Schema.Literal("Unserializable", "LoneSurrogate", "TooDeep", "TooLarge"),
  detail: Schema.String
}) {
  override get message(): string {
    return `QMP command ${this.command} not sent: ${this.detail}`
  }
}

/** QEMU answered a command with an `error` reply. */
export class QMPCommandError extends Schema.TaggedError<QMPCommandError>()("QMPCommandError", {
  command: Schema.String,
  /** QMP's error class, e.g. `GenericError`, `CommandNotFound`. */
  class: Schema.String,
  desc: Schema.String,
  flightRecord
}) {
  override get message(): string {
    return `QMP command ${this.command} failed: ${this.class}: ${this.desc}`
  }
}

/** A QMP command or an event wait did not complete in time. The session stays usable. */
export class QMPTimeout extends Schema.TaggedError<QMPTimeout>()("QMPTimeout", {
  operation: Schema.String,
  timeoutMillis: Schema.Number,
  flightRecord
}) {
  override get message(): string {
    return `QMP ${this.operation} timed out after ${this.timeoutMillis} ms`
  }
}

/** The QMP connection is gone: EOF, socket error, a fatal protocol error, or closed by us. */
export class QMPDisconnected extends Schema.TaggedError<QMPDisconnected>()("QMPDisconnected", {
  reason: Schema.Literal("Eof", "Error", "Protocol", "Closed"),
  detail: Schema.String,
  cause: Schema.optional(Schema.Unknown),
  flightRecord
}) {
  override get message(): string {
    return `QMP disconnected (${this.reason}): ${this.detail}`
  }
}

/** A QMP transport could not be opened (connect refused, accept timed out, ...). */
export class QMPConnectError extends Schema.TaggedError<QMPConnectError>()("QMPConnectError", {
  address: Schema.String,
  detail: Schema.String,
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `cannot open QMP transport ${this.address}: ${this.detail}`
  }
}

/**
 * QEMU could not be launched: the setup failed (a path, a file, a listener),
 * it could not be spawned, it exited during start up, or its QMP greeting
 * never came. Everything the launch created is already cleaned up when this
 * error arrives.
 *
 * `command` is the command line with secrets redacted (see `redactArgv`), so
 * the error can be logged and serialised as it is; `argv` has the exact one.
 */
export class VMLaunchFailure extends Schema.TaggedError<VMLaunchFailure>()("VMLaunchFailure", {
  /** `SchemaDrift`: the QMP schema check was set to `"fail"` and the schema differs (the cause says how). */
  reason: Schema.Literal("Setup", "Spawn", "Exited", "Handshake", "Timeout", "SchemaDrift"),
  /** The argv, wrapper included, secrets redacted. */
  command: Schema.Array(Schema.String),
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  /** QEMU's stdout and stderr up to the failure (the last 64 KiB at most). */
  output: Schema.String,
  cause: Schema.optional(Schema.Unknown),
  flightRecord
}) {
  /** The exact argv, secrets included. Not enumerable: JSON and structured logs leave it out. */
  declare readonly argv: ReadonlyArray<string>

  /** Makes the error from the exact argv; `command` gets the redacted copy. */
  static fromArgv(
    props: Omit<ConstructorParameters<typeof VMLaunchFailure>[0], "command"> & { readonly argv: ReadonlyArray<string> }
  ): VMLaunchFailure {
    const { argv, ...rest } = props
    const error = new VMLaunchFailure({ ...rest, command: redactArgv(argv) })
    Object.defineProperty(error, "argv", { value: argv, enumerable: false })
    return error
  }

  override get message(): string {
    const status = this.exitCode !== null
      ? `exit code ${this.exitCode}`
      : this.signal !== null
      ? `signal ${this.signal}`
      : this.reason === "Setup" || this.reason === "Spawn"
      ? "not started"
      : "killed by the launch"
    const output = this.output.trim()
    return `QEMU launch failed (${this.reason}, ${status}): ${this.command.join(" ")}${
      output.length > 0 ? `\n--- QEMU output ---\n${output}` : ""
    }${this.cause !== undefined ? `\ncause: ${describeCause(this.cause)}` : ""}`
  }
}

/** A graceful shutdown was requested but QEMU had to be killed. The cause says why. */
export class AbnormalShutdown extends Schema.TaggedError<AbnormalShutdown>()("AbnormalShutdown", {
  detail: Schema.String,
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  cause: Schema.optional(Schema.Unknown),
  flightRecord
}) {
  override get message(): string {
    return `Could not perform graceful shutdown: ${this.detail}${
      this.cause !== undefined ? `: ${describeCause(this.cause)}` : ""
    }`
  }
}

/** An operation was asked of a machine in a state where it cannot be done. */
export class MachineStateError extends Schema.TaggedError<MachineStateError>()("MachineStateError", {
  operation: Schema.String,
  state: Schema.String,
  detail: Schema.String,
  flightRecord
}) {
  override get message(): string {
    return `${this.operation}: machine is ${this.state}: ${this.detail}`
  }
}

/** An AF_UNIX socket path is longer than the kernel allows (107 bytes). */
export class SocketPathTooLong extends Schema.TaggedError<SocketPathTooLong>()("SocketPathTooLong", {
  path: Schema.String,
  length: Schema.Number,
  limit: Schema.Number
}) {
  override get message(): string {
    return `socket path is ${this.length} bytes, the limit is ${this.limit}: ${this.path}`
  }
}

/** A temporary directory or file could not be created or removed. */
export class TempFilesError extends Schema.TaggedError<TempFilesError>()("TempFilesError", {
  operation: Schema.String,
  path: Schema.String,
  cause: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `temp files: ${this.operation} ${this.path} failed${
      this.cause !== undefined ? `: ${describeCause(this.cause)}` : ""
    }`
  }
}

/** A console wait did not see its pattern in time. `tail` is the end of what was seen. */
export class ConsoleTimeout extends Schema.TaggedError<ConsoleTimeout>()("ConsoleTimeout", {
  pattern: Schema.String,
  timeoutMillis: Schema.Number,
  tail: Schema.String,
  flightRecord
}) {
  override get message(): string {
    return `console did not show ${this.pattern} within ${this.timeoutMillis} ms; last output: ${
      JSON.stringify(this.tail)
    }`
  }
}

/**
 * A console wait met one of its fail-fast patterns (`failOn`: a kernel
 * panic, "Login incorrect") before what it waited for. `tail` is the end of
 * the output, the match included.
 */
export class ConsoleFailure extends Schema.TaggedError<ConsoleFailure>()("ConsoleFailure", {
  /** The pattern waited for. */
  pattern: Schema.String,
  /** The fail-fast pattern that matched, and the text it matched. */
  failedOn: Schema.String,
  match: Schema.String,
  tail: Schema.String,
  flightRecord
}) {
  override get message(): string {
    return `console showed ${JSON.stringify(this.match)} (${this.failedOn}) while waiting for ${this.pattern}; last output: ${
      JSON.stringify(this.tail)
    }`
  }
}

/** The console is closed (shut down, or the guest's socket went away). */
export class ConsoleClosed extends Schema.TaggedError<ConsoleClosed>()("ConsoleClosed", {
  operation: Schema.String,
  detail: Schema.String,
  tail: Schema.String,
  flightRecord
}) {
  override get message(): string {
    return `console closed during ${this.operation}: ${this.detail}`
  }
}

/** A shell command (`ShellSession.succeed`) exited non-zero. */
export class ShellCommandFailed extends Schema.TaggedError<ShellCommandFailed>()("ShellCommandFailed", {
  command: Schema.String,
  exitCode: Schema.Number,
  /** What it wrote (stdout and stderr together). */
  output: Schema.String
}) {
  override get message(): string {
    return `${JSON.stringify(this.command)} exited with ${this.exitCode}: ${JSON.stringify(this.output.slice(-512))}`
  }
}

/** A shell command was interrupted (Ctrl-C, `ShellSession.interrupt`) before it finished. */
export class ShellInterrupted extends Schema.TaggedError<ShellInterrupted>()("ShellInterrupted", {
  command: Schema.String
}) {
  override get message(): string {
    return `${JSON.stringify(this.command)} was interrupted`
  }
}

/**
 * A guest agent (qemu-ga) request failed.
 *
 * - `Timeout`: no answer in time (the next request re-synchronises first).
 * - `Command`: the agent answered with an error (`errorClass`, `detail`).
 * - `Disconnected`: the channel closed (QEMU exited, or the agent was never wired).
 * - `Protocol`: the agent sent what is not its protocol.
 * - `Encode`: the arguments cannot be sent (see `QMPEncodeError`).
 */
export class GuestAgentError extends Schema.TaggedError<GuestAgentError>()("GuestAgentError", {
  reason: Schema.Literal("Timeout", "Command", "Disconnected", "Protocol", "Encode"),
  command: Schema.String,
  detail: Schema.String,
  errorClass: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `guest agent ${this.command}: ${this.errorClass !== undefined ? `${this.errorClass}: ` : ""}${this.detail}`
  }
}

const describeCause = (cause: unknown): string => {
  if (cause !== null && typeof cause === "object" && "message" in cause && typeof cause.message === "string") {
    return cause.message
  }
  if (cause !== null && typeof cause === "object" && "detail" in cause && typeof cause.detail === "string") {
    return cause.detail
  }
  return typeof cause === "object" && cause !== null ? JSON.stringify(cause) ?? String(cause) : String(cause)
}

/**
 * A file descriptor could not be passed to QEMU over the QMP socket
 * (`sendFdScm`, `getfd`, `addFd`).
 *
 * - `Unavailable`: the native SCM_RIGHTS helper was not built (see the README).
 * - `Unsupported`: the monitor is not a unix socket (TCP cannot carry descriptors).
 * - `BadDescriptor`: the descriptor is not open in this process.
 * - `Open`: the path to open and send could not be opened.
 * - `Send`: `sendmsg` failed.
 */
export class FdPassingError extends Schema.TaggedError<FdPassingError>()("FdPassingError", {
  reason: Schema.Literal("Unavailable", "Unsupported", "BadDescriptor", "Open", "Send"),
  detail: Schema.String,
  fd: Schema.optional(Schema.Number),
  path: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `cannot pass a file descriptor (${this.reason}): ${this.detail}`
  }
}

/**
 * A QMP message did not match the generated QAPI schema (see `Qapi`): a
 * command's result or arguments, or an event's data. Only raised when
 * checking is on (`decode: true`). `path` names the field, e.g.
 * `[0].inserted.file`.
 */
export class QMPDecodeError extends Schema.TaggedError<QMPDecodeError>()("QMPDecodeError", {
  subject: Schema.Literal("result", "arguments", "event"),
  /** The command or event. */
  name: Schema.String,
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.name} ${this.subject} does not match the QAPI schema${
      this.path === "" ? "" : ` at ${this.path}`
    }: ${this.detail}`
  }
}

/**
 * The live QEMU's QAPI schema differs from the one the types were generated
 * from, and the client was told to fail on that (`schemaCheck: "fail"`).
 */
export class QMPSchemaDrift extends Schema.TaggedError<QMPSchemaDrift>()("QMPSchemaDrift", {
  /** The QEMU version the types were generated from. */
  generatedFrom: Schema.String,
  /** The live QEMU's version. */
  live: Schema.String,
  /** A readable summary: commands and events added, removed and changed. */
  summary: Schema.String
}) {
  override get message(): string {
    return `QAPI schema drift: types are from QEMU ${this.generatedFrom}, connected to QEMU ${this.live}: ${this.summary}`
  }
}
