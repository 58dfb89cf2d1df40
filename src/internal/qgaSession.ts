/**
 * The guest agent's wire protocol (qemu-ga): QMP's command syntax without a
 * greeting or events, one request at a time, each answer a JSON line.
 *
 * The channel has no session: the agent may start after us, restart, or
 * (behind an ISA serial port nobody has opened yet) lose what we send. So
 * a session synchronises before its first request and after any failed one:
 * a 0xFF byte (which resets the agent's parser, dropping a half-sent
 * request) then `guest-sync-delimited` with a random id, until the agent
 * answers with that id after its own 0xFF. Bytes before a 0xFF are stale and
 * dropped; answers carry the request's `id`, and one to an earlier request
 * (that timed out) is dropped too.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schema from "effect/Schema"
import { GuestAgentError } from "../Errors.js"
import { encodeCommand } from "./framing.js"
import type * as Transport from "./transport.js"
import * as Tracing from "./tracing.js"

/** An answer: a result or an error, with the request's id. */
const Answer = Schema.parseJson(Schema.Union(
  Schema.Struct({
    error: Schema.Struct({ class: Schema.String, desc: Schema.String }),
    id: Schema.optional(Schema.Unknown)
  }),
  // JSON has no undefined: a missing `return` is not an answer.
  Schema.Struct({ return: Schema.Unknown.pipe(Schema.filter((value) => value !== undefined)), id: Schema.optional(Schema.Unknown) })
))
const decodeAnswer = Schema.decodeUnknownEither(Answer)

const SENTINEL = 0xff
const NEWLINE = 0x0a
/** The longest answer accepted: `guest-file-read` of a 1 MiB chunk is about 1.4 MB. */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024

/** The session's options. */
export interface QgaSessionOptions {
  /** How long a sync waits for one answer before it sends another. Default 500 ms. */
  readonly syncInterval?: Duration.DurationInput | undefined
}

/** A request's options. */
export interface RequestOptions {
  readonly timeout: Duration.Duration
  /** False for commands that never answer on success (`guest-shutdown`, the suspends). */
  readonly answers?: boolean | undefined
}

/** A session over a byte channel to the agent. */
export interface QgaSession {
  readonly request: (
    command: string,
    args: Record<string, unknown> | undefined,
    options: RequestOptions
  ) => Effect.Effect<unknown, GuestAgentError>
  /** Synchronises now (a no-op request's worth of round trips), within `timeout`. */
  readonly sync: (timeout: Duration.Duration) => Effect.Effect<void, GuestAgentError>
  readonly isOpen: Effect.Effect<boolean>
  readonly close: Effect.Effect<void>
}

interface Pending {
  readonly id: number
  readonly command: string
  readonly answer: Deferred.Deferred<unknown, GuestAgentError>
  /** A sync's answer is its id, after the agent's 0xFF. */
  readonly sync: boolean
}

/** Runs a session on a transport; the reader lives in the caller's scope. */
export const make = (transport: Transport.ByteTransport, options: QgaSessionOptions = {}) =>
  Effect.gen(function*() {
    const syncInterval = Duration.decode(options.syncInterval ?? Duration.millis(500))
    const oneAtATime = yield* Effect.makeSemaphore(1)
    let pending: Pending | undefined
    let synced = false
    let ended: string | undefined
    let nextId = 1
    // The current line, as chunks; `afterSentinel` once a 0xFF began it.
    let line: Array<Uint8Array> = []
    let lineBytes = 0
    let afterSentinel = false

    const settle = (outcome: Either.Either<unknown, GuestAgentError>) => {
      const current = pending
      if (current === undefined) return
      pending = undefined
      Deferred.unsafeDone(current.answer, Either.isRight(outcome) ? Effect.succeed(outcome.right) : Effect.fail(outcome.left))
    }

    const onLine = (bytes: Uint8Array, sentinel: boolean) => {
      const current = pending
      if (current === undefined) return
      const text = new TextDecoder().decode(bytes).trim()
      if (text === "") return
      const decoded = decodeAnswer(text)
      if (Either.isLeft(decoded)) {
        // Noise from before a restart is harmless once we sync; garbage now means the session is lost.
        synced = false
        if (!current.sync) {
          settle(Either.left(protocolError(current.command, `not an answer: ${JSON.stringify(text.slice(0, 200))}`)))
        }
        return
      }
      const answer = decoded.right
      if (current.sync) {
        if (sentinel && "return" in answer && answer.return === current.id) settle(Either.right(undefined))
        return
      }
      // An answer to an earlier request that timed out: not ours.
      if (answer.id !== undefined && answer.id !== current.id) return
      settle(
        "error" in answer
          ? Either.left(
            new GuestAgentError({
              reason: "Command",
              command: current.command,
              detail: answer.error.desc,
              errorClass: answer.error.class
            })
          )
          : Either.right(answer.return)
      )
    }

    const onChunk = (chunk: Uint8Array) => {
      let start = 0
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i]
        if (byte !== SENTINEL && byte !== NEWLINE) continue
        if (byte === NEWLINE) {
          line.push(chunk.subarray(start, i))
          onLine(Buffer.concat(line), afterSentinel)
        }
        // A 0xFF starts afresh: what came before it is stale.
        afterSentinel = byte === SENTINEL
        line = []
        lineBytes = 0
        start = i + 1
      }
      if (start < chunk.length) {
        lineBytes += chunk.length - start
        if (lineBytes > MAX_ANSWER_BYTES) {
          line = []
          lineBytes = 0
          synced = false
          if (pending !== undefined) {
            settle(Either.left(protocolError(pending.command, `an answer over ${MAX_ANSWER_BYTES} bytes`)))
          }
          return
        }
        line.push(chunk.subarray(start))
      }
    }

    const onEnd = (end: Transport.TransportEnd) => {
      ended = end._tag === "Error" ? `the channel failed: ${end.error.message}` : "the channel closed"
      if (pending !== undefined) {
        settle(Either.left(new GuestAgentError({ reason: "Disconnected", command: pending.command, detail: ended })))
      }
    }
    yield* transport.listen(onChunk, onEnd)

    const disconnected = (command: string) =>
      new GuestAgentError({ reason: "Disconnected", command, detail: ended ?? "the channel closed" })

    /** Sends one request and waits up to `wait` for its answer; `None` on timeout. */
    const exchange = (request: Pending, bytes: Uint8Array | string, wait: Duration.Duration, answers: boolean) =>
      Effect.gen(function*() {
        if (ended !== undefined) return yield* disconnected(request.command)
        pending = request
        yield* transport.write(bytes).pipe(Effect.mapError(() => disconnected(request.command)))
        if (!answers) {
          pending = undefined
          return Option.some(undefined)
        }
        return yield* Deferred.await(request.answer).pipe(Effect.timeoutTo({
          duration: wait,
          onSuccess: Option.some<unknown>,
          onTimeout: Option.none
        }))
      }).pipe(Effect.ensuring(Effect.sync(() => {
        if (pending === request) pending = undefined
      })))

    const syncNow = (timeout: Duration.Duration) =>
      Effect.gen(function*() {
        const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(timeout)
        while (true) {
          const id = yield* Random.nextIntBetween(1, 0x7fffffff)
          const text = JSON.stringify({ execute: "guest-sync-delimited", arguments: { id } })
          const bytes = Buffer.concat([Buffer.of(SENTINEL), Buffer.from(text)])
          const left = deadline - (yield* Clock.currentTimeMillis)
          const answer = yield* Deferred.make<unknown, GuestAgentError>()
          const result = yield* exchange(
            { id, command: "guest-sync-delimited", answer, sync: true },
            bytes,
            Duration.millis(Math.max(1, Math.min(left, Duration.toMillis(syncInterval)))),
            true
          )
          if (Option.isSome(result)) {
            synced = true
            return
          }
          if ((yield* Clock.currentTimeMillis) >= deadline) {
            return yield* new GuestAgentError({
              reason: "Timeout",
              command: "guest-sync-delimited",
              detail: `the agent did not answer within ${Duration.format(timeout)} (is qemu-ga running in the guest?)`
            })
          }
        }
      }).pipe(Tracing.withSpan("GuestAgent.sync"))

    const request = (command: string, args: Record<string, unknown> | undefined, requestOptions: RequestOptions) =>
      oneAtATime.withPermits(1)(Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        if (!synced) yield* syncNow(requestOptions.timeout)
        const id = nextId++
        const encoded = encodeCommand(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })
        if (Either.isLeft(encoded)) {
          return yield* new GuestAgentError({ reason: "Encode", command, detail: encoded.left.detail })
        }
        const left = Duration.millis(Math.max(1, Duration.toMillis(requestOptions.timeout) - ((yield* Clock.currentTimeMillis) - started)))
        const answer = yield* Deferred.make<unknown, GuestAgentError>()
        const result = yield* exchange(
          { id, command, answer, sync: false },
          encoded.right,
          left,
          requestOptions.answers !== false
        ).pipe(Effect.onExit((exit) =>
          Effect.sync(() => {
            // A failed or abandoned exchange may leave the agent mid-request or a late answer in flight.
            const error = exit._tag === "Failure" ? Cause.failureOption(exit.cause) : Option.none()
            if (exit._tag === "Failure" && !(Option.isSome(error) && error.value.reason === "Command")) synced = false
          })
        ))
        if (Option.isNone(result)) {
          synced = false
          return yield* new GuestAgentError({
            reason: "Timeout",
            command,
            detail: `no answer within ${Duration.format(requestOptions.timeout)}`
          })
        }
        return result.value
      })).pipe(Tracing.withSpan("GuestAgent.request", { attributes: { "qga.command": command } }))

    const session: QgaSession = {
      request,
      sync: (timeout) => oneAtATime.withPermits(1)(syncNow(timeout)),
      isOpen: Effect.sync(() => ended === undefined),
      close: transport.close
    }
    return session
  })

const protocolError = (command: string, detail: string) => new GuestAgentError({ reason: "Protocol", command, detail })
