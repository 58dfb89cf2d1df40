/**
 * The QMP wire format: `Schema`s for every message, the framing decoder, and
 * the seed's small helpers (`event_match`, `conv_keys`).
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

/** Either reply; what `executeRaw` returns (the seed's `qmp()`). */
export const Reply = Schema.Union(SuccessReply, ErrorReply)
/** @see Reply */
export type Reply = typeof Reply.Type

/** An asynchronous event. */
export const Event = Schema.Struct({
  event: Schema.String,
  data: Schema.optional(Arguments),
  timestamp: Schema.Struct({ seconds: Schema.Number, microseconds: Schema.Number })
})
/** @see Event */
export type Event = typeof Event.Type

/** Anything a QMP server sends. */
export const ServerMessage = Schema.Union(Greeting, SuccessReply, ErrorReply, Event)
/** @see ServerMessage */
export type ServerMessage = typeof ServerMessage.Type

/** Is this reply an error reply? */
export const isErrorReply = (reply: Reply): reply is ErrorReply => "error" in reply


const decodeOptions = { onExcessProperty: "preserve", errors: "first" } as const
const decodeGreeting = Schema.decodeUnknownEither(Greeting, decodeOptions)
const decodeSuccess = Schema.decodeUnknownEither(SuccessReply, decodeOptions)
const decodeError = Schema.decodeUnknownEither(ErrorReply, decodeOptions)
const decodeEvent = Schema.decodeUnknownEither(Event, decodeOptions)
const decodeCommand = Schema.decodeUnknownEither(Command, decodeOptions)

/** A server message, classified. Unknown fields are kept on `message`. */
export type Classified =
  | { readonly _tag: "Greeting"; readonly message: Greeting }
  | { readonly _tag: "Reply"; readonly message: Reply }
  | { readonly _tag: "Event"; readonly message: Event }

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
    return Either.mapBoth(decodeSuccess(json), {
      onLeft: (e) => malformed(ParseResult.TreeFormatter.formatErrorSync(e), json),
      onRight: (message): Classified => ({ _tag: "Reply", message })
    })
  }
  if ("error" in json) {
    return Either.mapBoth(decodeError(json), {
      onLeft: (e) => malformed(ParseResult.TreeFormatter.formatErrorSync(e), json),
      onRight: (message): Classified => ({ _tag: "Reply", message })
    })
  }
  if ("event" in json) {
    return Either.mapBoth(decodeEvent(json), {
      onLeft: (e) => malformed(ParseResult.TreeFormatter.formatErrorSync(e), json),
      onRight: (message): Classified => ({ _tag: "Event", message })
    })
  }
  if ("QMP" in json) {
    return Either.mapBoth(decodeGreeting(json), {
      onLeft: (e) => malformed(ParseResult.TreeFormatter.formatErrorSync(e), json),
      onRight: (message): Classified => ({ _tag: "Greeting", message })
    })
  }
  return Either.left(malformed("not a greeting, reply or event", json))
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

/** QEMU's JSON parser limits (`qobject/json-streamer.c`): past any of them it answers with errors that carry no id. */
export const QEMU_JSON_LIMITS = {
  /** Nesting of objects and arrays, the command object itself included. */
  maxNesting: 1024,
  /** Tokens in one message. */
  maxTokens: 2 * 1024 * 1024,
  /** Bytes of token text in one message. */
  maxBytes: 64 * 1024 * 1024
} as const

/** Why a command could not be encoded for QEMU. */
export interface EncodeFailure {
  readonly reason: "Unserializable" | "LoneSurrogate" | "TooDeep" | "TooLarge"
  readonly detail: string
}

/**
 * Encodes a command as JSON, with no trailing newline: QEMU frames input by
 * JSON nesting, and a newline it has not read when it exits after `quit`
 * makes the kernel reset the connection (over TCP that can drop the reply
 * to `quit` itself).
 *
 * Fails, rather than throws, for what `JSON.stringify` cannot encode (BigInt,
 * cycles, throwing getters, nesting past the stack), and for what QEMU's
 * parser would reject with an error that has no id, so no reply could be
 * matched to the command: a lone UTF-16 surrogate, or a message past
 * `QEMU_JSON_LIMITS`.
 */
export const encodeCommand = (command: Command): Either.Either<string, EncodeFailure> => {
  let text: string
  try {
    text = JSON.stringify(command)
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    return Either.left({
      reason: "Unserializable",
      detail: error instanceof RangeError
        ? `arguments nest too deeply to serialise (${message})`
        : `arguments cannot be serialised as JSON: ${message.split("\n")[0]}`
    })
  }
  const problem = checkForQemu(text)
  return problem === undefined ? Either.right(text) : Either.left(problem)
}

const BACKSLASH_CODE = 0x5c
const QUOTE_CODE = 0x22
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d

/**
 * One pass over JSON text as `JSON.stringify` writes it (no whitespace; lone
 * surrogates escaped as `\udXXX`, pairs left raw): nesting depth, token
 * count and lone surrogates, as QEMU's streamer counts them.
 */
const checkForQemu = (text: string): EncodeFailure | undefined => {
  if (text.length > QEMU_JSON_LIMITS.maxBytes / 3 && Buffer.byteLength(text, "utf8") > QEMU_JSON_LIMITS.maxBytes) {
    return { reason: "TooLarge", detail: `the command is over QEMU's limit of ${QEMU_JSON_LIMITS.maxBytes} bytes` }
  }
  let depth = 0
  let tokens = 0
  let inString = false
  let inScalar = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH_CODE) {
        // JSON.stringify writes \u escapes only for control characters and lone surrogates.
        if (text.charCodeAt(i + 1) === 0x75 /* u */) {
          const unit = parseInt(text.slice(i + 2, i + 6), 16)
          if (unit >= 0xd800 && unit <= 0xdfff) {
            return {
              reason: "LoneSurrogate",
              detail: `a string holds a lone UTF-16 surrogate (\\u${unit.toString(16)}), which QEMU's JSON parser rejects`
            }
          }
          i += 5
        } else {
          i++
        }
      } else if (c === QUOTE_CODE) {
        inString = false
      }
      continue
    }
    switch (c) {
      case QUOTE_CODE:
        inString = true
        inScalar = false
        tokens++
        break
      case OPEN_BRACE:
      case OPEN_BRACKET:
        if (++depth > QEMU_JSON_LIMITS.maxNesting) {
          return {
            reason: "TooDeep",
            detail: `the command nests deeper than QEMU's limit of ${QEMU_JSON_LIMITS.maxNesting} (the command object included)`
          }
        }
        inScalar = false
        tokens++
        break
      case CLOSE_BRACE:
      case CLOSE_BRACKET:
        depth--
        inScalar = false
        tokens++
        break
      case 0x2c: // ,
      case 0x3a: // :
        inScalar = false
        tokens++
        break
      default:
        if (!inScalar) {
          inScalar = true
          tokens++
        }
    }
  }
  return tokens > QEMU_JSON_LIMITS.maxTokens
    ? { reason: "TooLarge", detail: `the command has ${tokens} JSON tokens, over QEMU's limit of ${QEMU_JSON_LIMITS.maxTokens}` }
    : undefined
}

/**
 * The seed's `event_match`: does `event` contain `match`, recursively?
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

/** The seed's `conv_keys`: `snake_case` argument names become QMP's `kebab-case`. Top level only, as in the seed. */
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
export const matchesAny = (event: Event, filters: ReadonlyArray<EventFilter>): boolean => {
  for (const filter of filters) {
    if (event.event === filter.name && eventMatch(event, filter.match)) return true
  }
  return false
}
