/**
 * QMP framing, both ways. In: an incremental decoder that finds message
 * boundaries in a byte stream by tracking JSON nesting (strings and escapes
 * included), so newline-separated and pretty-printed messages both work, and
 * that recovers from garbage and cut-off messages. Out: the encoder, which
 * refuses what QEMU's own parser would answer without an id. See
 * `docs/qmp.md`.
 */
import * as Either from "effect/Either"
import { QMPProtocolError } from "../Errors.js"
import type { Command } from "../QmpProtocol.js"

/** The default cap on one message: 10 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024

const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const QUOTE = 0x22
const BACKSLASH = 0x5c
const NEWLINE = 0x0a

const isWhitespace = (byte: number) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09

/** What the decoder hands on for each chunk: messages and non-fatal errors in order. */
export interface FrameSink {
  readonly onMessage: (json: unknown) => void
  readonly onError: (error: QMPProtocolError) => void
}

/**
 * Incremental QMP framing decoder. Feed it chunks as they arrive; it calls
 * the sink for each complete JSON object. UTF-8 sequences split across
 * chunks are safe because boundaries are found on ASCII bytes only.
 *
 * Garbage between messages, and text that is not valid JSON, produce a
 * non-fatal `QMPProtocolError` and the decoder skips to the next line. A
 * message over `maxMessageBytes` is fatal: `push` returns the error and the
 * decoder accepts no more input.
 */
export class FrameDecoder {
  private readonly parts: Array<Uint8Array> = []
  private length = 0
  private depth = 0
  private inString = false
  private escaped = false
  private skipping = false
  private skipped: Array<number> = []
  /** Garbage lines seen since the last report; a flood is reported once per chunk, not once per line. */
  private garbageLines = 0
  private atLineStart = false
  private failed: QMPProtocolError | undefined
  private readonly text = new TextDecoder("utf-8", { fatal: false })

  constructor(readonly maxMessageBytes: number = DEFAULT_MAX_MESSAGE_BYTES) {}

  /** Feeds one chunk. Returns a fatal error once the stream can no longer be framed. */
  push(chunk: Uint8Array, sink: FrameSink): QMPProtocolError | undefined {
    if (this.failed !== undefined) return this.failed
    let start = this.depth > 0 ? 0 : -1
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!
      if (this.skipping) {
        if (byte === NEWLINE) {
          this.skipping = false
          this.garbageLines++
        } else if (this.garbageLines === 0 && this.skipped.length < 64) {
          this.skipped.push(byte)
        }
        continue
      }
      if (this.depth === 0) {
        if (isWhitespace(byte)) continue
        if (byte !== OPEN_BRACE) {
          this.skipping = true
          if (this.garbageLines === 0) this.skipped = [byte]
          continue
        }
        this.reportGarbage(sink)
        start = i
        this.depth = 1
        continue
      }
      if (this.inString) {
        if (byte === NEWLINE) {
          // JSON strings cannot hold a raw newline: the message was cut off. Drop it and start afresh.
          this.reportTruncated(chunk.subarray(start, i), sink)
          start = -1
          continue
        }
        if (this.escaped) this.escaped = false
        else if (byte === BACKSLASH) this.escaped = true
        else if (byte === QUOTE) this.inString = false
        continue
      }
      if (byte === OPEN_BRACE && this.atLineStart) {
        // A '{' at the start of a line inside a message: QEMU (one message a line) and pretty-printers
        // (nested values are indented) only put a top-level object there, so the previous message was
        // cut off. Report it and start the new one here.
        this.reportTruncated(chunk.subarray(start, i), sink)
        start = i
        this.depth = 1
        this.atLineStart = false
        continue
      }
      this.atLineStart = byte === NEWLINE
      if (byte === QUOTE) this.inString = true
      else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) this.depth++
      else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        this.depth--
        if (this.depth === 0) {
          const piece = chunk.subarray(start, i + 1)
          if (this.length + piece.length > this.maxMessageBytes) return this.oversize()
          this.emit(piece, sink)
          start = -1
        }
      }
    }
    this.reportGarbage(sink)
    if (this.depth > 0 && start >= 0) {
      const piece = chunk.subarray(start)
      if (this.length + piece.length > this.maxMessageBytes) return this.oversize()
      // Copy: the caller may reuse its buffer.
      this.parts.push(piece.slice())
      this.length += piece.length
    }
    return undefined
  }

  /** Reports what is left at end of stream: a truncated message or unterminated garbage. */
  end(sink: FrameSink): void {
    if (this.failed !== undefined) return
    if (this.skipping) {
      this.skipping = false
      this.garbageLines++
    }
    this.reportGarbage(sink)
    if (this.depth > 0) {
      const excerpt = this.text.decode(concat(this.parts, Math.min(this.length, 200)))
      sink.onError(
        new QMPProtocolError({
          reason: "Garbage",
          detail: `stream ended inside a message after ${this.length} bytes`,
          fatal: false,
          excerpt
        })
      )
      this.reset()
    }
  }

  private emit(last: Uint8Array, sink: FrameSink) {
    const bytes = this.parts.length === 0 ? last : concat([...this.parts, last], this.length + last.length)
    const source = this.text.decode(bytes)
    this.reset()
    let json: unknown
    try {
      json = JSON.parse(source)
    } catch (e) {
      sink.onError(
        new QMPProtocolError({
          reason: "Garbage",
          detail: `invalid JSON: ${e instanceof Error ? e.message : String(e)}`,
          fatal: false,
          excerpt: source.length > 200 ? `${source.slice(0, 200)}…` : source
        })
      )
      return
    }
    sink.onMessage(json)
  }

  private reportTruncated(last: Uint8Array, sink: FrameSink) {
    const bytes = concat([...this.parts, last], Math.min(this.length + last.length, 200))
    sink.onError(
      new QMPProtocolError({
        reason: "Garbage",
        detail: "a message was cut off (a raw newline in a string, or a new message at the start of a line)",
        fatal: false,
        excerpt: this.text.decode(bytes)
      })
    )
    this.reset()
  }

  private reset() {
    this.atLineStart = false
    this.parts.length = 0
    this.length = 0
    this.depth = 0
    this.inString = false
    this.escaped = false
  }

  private reportGarbage(sink: FrameSink) {
    const count = this.garbageLines
    if (count === 0) return
    this.garbageLines = 0
    sink.onError(
      new QMPProtocolError({
        reason: "Garbage",
        detail: count === 1 ? "bytes outside a JSON object" : `${count} lines of bytes outside a JSON object`,
        fatal: false,
        excerpt: this.text.decode(Uint8Array.from(this.skipped)),
        count
      })
    )
    this.skipped = []
  }

  private oversize(): QMPProtocolError {
    this.reset()
    this.failed = new QMPProtocolError({
      reason: "Oversize",
      detail: `a message exceeds the cap of ${this.maxMessageBytes} bytes`,
      fatal: true
    })
    return this.failed
  }
}

const concat = (parts: ReadonlyArray<Uint8Array>, length: number): Uint8Array => {
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    if (offset >= length) break
    const take = Math.min(part.length, length - offset)
    out.set(take === part.length ? part : part.subarray(0, take), offset)
    offset += take
  }
  return out
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
      if (c === BACKSLASH) {
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
      } else if (c === QUOTE) {
        inString = false
      }
      continue
    }
    switch (c) {
      case QUOTE:
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
