/**
 * The QMP wire format: `Schema`s for every message, the framing decoder, and
 * small helpers of QEMU's Python `QEMUMachine` (`event_match`, `conv_keys`).
 *
 * QMP is a stream of JSON objects. QEMU ends each with a newline, but peers
 * may pretty-print them over many lines, so the decoder finds message
 * boundaries by tracking JSON nesting, not by splitting on newlines.
 *
 * @module
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { QMPProtocolError } from "./Errors.js"

/** QEMU's version triple as the greeting reports it. */
export const QemuVersion = Schema.Struct({
  qemu: Schema.Struct({ major: Schema.Number, minor: Schema.Number, micro: Schema.Number }),
  package: Schema.String
})

/** The server's first message: `{"QMP": {"version": ..., "capabilities": [...]}}`. */
export const Greeting = Schema.Struct({
  QMP: Schema.Struct({
    version: QemuVersion,
    capabilities: Schema.Array(Schema.String)
  })
})
/** @see Greeting */
export type Greeting = typeof Greeting.Type

/** Arguments of a command: a JSON object. */
export const Arguments = Schema.Record({ key: Schema.String, value: Schema.Unknown })
/** @see Arguments */
export type Arguments = typeof Arguments.Type

/** A command as the client sends it (`exec-oob` for out-of-band commands). */
export const Command = Schema.Union(
  Schema.Struct({
    execute: Schema.String,
    arguments: Schema.optional(Arguments),
    id: Schema.optional(Schema.Unknown)
  }),
  Schema.Struct({
    "exec-oob": Schema.String,
    arguments: Schema.optional(Arguments),
    id: Schema.optional(Schema.Unknown)
  })
)
/** @see Command */
export type Command = typeof Command.Type

/** A successful reply: `{"return": ..., "id": ...}`. */
export const SuccessReply = Schema.Struct({
  return: Schema.Unknown,
  id: Schema.optional(Schema.Unknown)
})
/** @see SuccessReply */
export type SuccessReply = typeof SuccessReply.Type

/** An error reply: `{"error": {"class": ..., "desc": ...}, "id": ...}`. */
export const ErrorReply = Schema.Struct({
  error: Schema.Struct({ class: Schema.String, desc: Schema.String }),
  id: Schema.optional(Schema.Unknown)
})
/** @see ErrorReply */
export type ErrorReply = typeof ErrorReply.Type

/** Either reply; what `executeRaw` returns (`qmp()` of QEMU's Python `QEMUMachine`). */
export const Reply = Schema.Union(SuccessReply, ErrorReply)
/** @see Reply */
export type Reply = typeof Reply.Type

/** An asynchronous event, as QEMU sends it (`timestamp` is QEMU's clock). */
export const EventMessage = Schema.Struct({
  event: Schema.String,
  data: Schema.optional(Arguments),
  timestamp: Schema.Struct({ seconds: Schema.Number, microseconds: Schema.Number })
})
/** @see EventMessage */
export type EventMessage = typeof EventMessage.Type

/** An event as a session hands it out: the message, and when it arrived (`Date.now()` in this process). */
export interface Event extends EventMessage {
  readonly receivedAt: number
}

/** Anything a QMP server sends. */
export const ServerMessage = Schema.Union(Greeting, SuccessReply, ErrorReply, EventMessage)
/** @see ServerMessage */
export type ServerMessage = typeof ServerMessage.Type

/** Is this reply an error reply? */
export const isErrorReply = (reply: Reply): reply is ErrorReply => "error" in reply


const decodeOptions = { onExcessProperty: "preserve", errors: "first" } as const
const decodeGreeting = Schema.decodeUnknownEither(Greeting, decodeOptions)
const decodeError = Schema.decodeUnknownEither(ErrorReply, decodeOptions)
const decodeEvent = Schema.decodeUnknownEither(EventMessage, decodeOptions)
const decodeCommand = Schema.decodeUnknownEither(Command, decodeOptions)

/** A server message, classified. Unknown fields are kept on `message`. */
export type Classified =
  | { readonly _tag: "Greeting"; readonly message: Greeting }
  | { readonly _tag: "Reply"; readonly message: Reply }
  | { readonly _tag: "Event"; readonly message: EventMessage }

/**
 * Decodes one parsed JSON value from a server with the matching `Schema`.
 * Dispatches on the distinguishing key first, so each message is decoded by
 * exactly one schema.
 */
export const classifyServerMessage = (json: unknown): Either.Either<Classified, QMPProtocolError> => {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return Either.left(malformed("a QMP message must be a JSON object", json))
  }
  if ("return" in json) {
    // `SuccessReply` accepts every object with a `return` key (any value, any id, extra keys kept):
    // decoding would only copy it, at a tenth of a command's allocations. The schema stays the spec.
    return Either.right({ _tag: "Reply", message: json as SuccessReply })
  }
  if ("error" in json) {
    return Either.mapBoth(decodeError(json), {
      onLeft: (e) => malformed(ParseResult.TreeFormatter.formatErrorSync(e), json),
      onRight: (message): Classified => ({ _tag: "Reply", message })
    })
  }
  if ("event" in json) {
    // Checked by hand first, as replies are: an event that passes is what decoding would copy (property-tested).
    if (isEventMessage(json)) return Either.right({ _tag: "Event", message: json })
    return Either.mapBoth(decodeEvent(json), {
      onLeft: (e) => malformed(ParseResult.TreeFormatter.formatErrorSync(e), json),
      onRight: (message): Classified => ({ _tag: "Event", message })
    })
  }
  if ("QMP" in json) {
    if (isGreeting(json)) return Either.right({ _tag: "Greeting", message: json })
    return Either.mapBoth(decodeGreeting(json), {
      onLeft: (e) => malformed(ParseResult.TreeFormatter.formatErrorSync(e), json),
      onRight: (message): Classified => ({ _tag: "Greeting", message })
    })
  }
  return Either.left(malformed("not a greeting, reply or event", json))
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value)

/**
 * `EventMessage` and `Greeting` checked by hand, for messages parsed from
 * JSON. A message that passes is returned as it is, which is what decoding
 * it would give (a copy); any other goes through the schema, which says what
 * is wrong. Decoding runs 0.1 ms of cold code on a small VM, and a launch
 * has a greeting on its path and a shutdown QEMU's `SHUTDOWN` event
 * (docs/performance.md).
 */
const isEventMessage = (json: object): json is EventMessage => {
  const message = json as Record<string, unknown>
  const timestamp = message.timestamp
  return typeof message.event === "string" &&
    isObject(timestamp) && typeof timestamp.seconds === "number" && typeof timestamp.microseconds === "number" &&
    (message.data === undefined || isObject(message.data))
}

/** @see isEventMessage */
const isGreeting = (json: object): json is Greeting => {
  const qmp = (json as Record<string, unknown>).QMP
  if (!isObject(qmp) || !Array.isArray(qmp.capabilities) || !isObject(qmp.version)) return false
  const { package: packageName, qemu } = qmp.version
  return typeof packageName === "string" && isObject(qemu) &&
    typeof qemu.major === "number" && typeof qemu.minor === "number" && typeof qemu.micro === "number" &&
    qmp.capabilities.every((capability) => typeof capability === "string")
}

/** Decodes one parsed JSON value from a client (what a QMP server receives). */
export const decodeClientCommand = (json: unknown): Either.Either<Command, QMPProtocolError> =>
  Either.mapLeft(decodeCommand(json), (e) => malformed(ParseResult.TreeFormatter.formatErrorSync(e), json))

const malformed = (detail: string, json: unknown) =>
  new QMPProtocolError({ reason: "Malformed", detail, fatal: false, excerpt: excerptOf(json) })

/** A short rendering of a message for errors and logs (at most 200 characters). */
export const excerpt = (json: unknown): string => excerptOf(json)

const excerptOf = (json: unknown): string => {
  const text = typeof json === "string" ? json : safeStringify(json)
  return text.length > 200 ? `${text.slice(0, 200)}…` : text
}

const safeStringify = (json: unknown): string => {
  try {
    return JSON.stringify(json) ?? String(json)
  } catch {
    return String(json)
  }
}

/**
 * `event_match` of QEMU's Python `QEMUMachine`: does `event` contain `match`, recursively?
 * `null` or `undefined` in `match` is a wildcard; non-objects compare with
 * `===` (arrays element-wise as objects keyed by index, like Python's `in`).
 */
export const eventMatch = (event: unknown, match: unknown): boolean => {
  if (match === null || match === undefined) return true
  if (typeof match !== "object") return match === event
  if (event === null || typeof event !== "object") return false
  for (const key of Object.keys(match)) {
    if (!Object.prototype.hasOwnProperty.call(event, key)) return false
    if (!eventMatch((event as Record<string, unknown>)[key], (match as Record<string, unknown>)[key])) return false
  }
  return true
}

/** `conv_keys` of QEMU's Python `QEMUMachine`: `snake_case` argument names become QMP's `kebab-case`. Top level only, as in QEMU's Python `QEMUMachine`. */
export const convertKeys = (args: Arguments): Arguments => {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(args)) out[key.replace(/_/g, "-")] = args[key]
  return out
}

/** A filter for event waits: a name and an optional `eventMatch` pattern for the whole event. */
export interface EventFilter {
  readonly name: string
  readonly match?: unknown
}

/** Does `event` pass any of `filters`? */
export const matchesAny = (event: EventMessage, filters: ReadonlyArray<EventFilter>): boolean => {
  for (const filter of filters) {
    if (event.event === filter.name && eventMatch(event, filter.match)) return true
  }
  return false
}
