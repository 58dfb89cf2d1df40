/**
 * The QMP protocol engine under `QmpClient`: one session over a byte
 * transport. The reader is a synchronous callback (no fiber per chunk):
 * framing, one Schema per message, replies matched to waiting commands by id,
 * events handed to the event hub. See `docs/qmp.md`.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  type FdPassingError,
  QMPDisconnected,
  QMPEncodeError,
  QMPGreetingError,
  QMPProtocolError,
  QMPTimeout
} from "../Errors.js"
import {
  type Arguments,
  classifyServerMessage,
  excerpt,
  type Greeting,
  isErrorReply,
  type Reply
} from "../QmpProtocol.js"
import * as Broadcast from "./broadcast.js"
import * as FdPassing from "./fdPassing.js"
import { encodeCommand, FrameDecoder } from "./framing.js"
import * as OneShot from "./oneShot.js"
import type { QmpClientOptions } from "./qmpOptions.js"
import * as QmpEvents from "./qmpEvents.js"
import * as Tracing from "./tracing.js"
import type * as Transport from "./transport.js"
import * as Warnings from "./warnings.js"

/** Errors a command can end in before its reply is read (an error reply is a value here). */
export type SendError = QMPTimeout | QMPDisconnected | QMPEncodeError

/** How to send one command. */
export interface SendOptions {
  readonly timeout?: Duration.DurationInput | undefined
  readonly oob?: boolean | undefined
}

const DEFAULT_GREETING_TIMEOUT = Duration.seconds(30)
const DEFAULT_EVENT_BUFFERS = 10_000

/** A session, negotiating from the start: its commands need `handshake` to have succeeded. */
export interface Session {
  /**
   * Waits for the greeting and the answer to `qmp_capabilities`, at most `timeout` (default `greetingTimeout`)
   * from now; fails if QEMU refused. `greeting` and `capabilities` are set once it has succeeded.
   */
  readonly handshake: (timeout?: Duration.DurationInput) => Effect.Effect<void, QMPGreetingError>
  readonly greeting: Greeting
  readonly capabilities: ReadonlyArray<string>
  readonly send: (command: string, args: Arguments | undefined, options?: SendOptions) => Effect.Effect<Reply, SendError>
  /** `send`, with these descriptors attached to the command's bytes (SCM_RIGHTS). */
  readonly withFds: (fds: ReadonlyArray<number>) => {
    readonly send: (...args: Parameters<Session["send"]>) => Effect.Effect<Reply, SendError | FdPassingError>
  }
  /** `send_fd_scm` of QEMU's Python `QEMUMachine`: one space byte carrying a descriptor. */
  readonly sendFd: (fd: number) => Effect.Effect<void, QMPDisconnected | FdPassingError>
  readonly events: QmpEvents.EventHub
  readonly protocolErrors: Stream.Stream<QMPProtocolError>
  readonly isConnected: Effect.Effect<boolean>
  readonly awaitDisconnect: Effect.Effect<QMPDisconnected>
  readonly close: Effect.Effect<void>
  /** True once QEMU accepted a `quit`: it is on its way out. */
  readonly quitAccepted: () => boolean
}

/** The greeting, the capabilities asked for, and QEMU's answer to `qmp_capabilities`. */
interface Handshake {
  readonly greeting: Greeting
  readonly enable: ReadonlyArray<string>
  readonly reply: Reply
}

/** In-band commands remembered for id-less error replies; past this many unanswered, the oldest is forgotten. */
const MAX_UNANSWERED = 65_536

/**
 * Starts a session over a transport: its reader answers the greeting, and
 * `handshake` waits for the result. The scope ends it.
 */
export const make = (
  transport: Transport.ByteTransport,
  options: QmpClientOptions
): Effect.Effect<Session, never, Scope.Scope> =>
  Effect.gen(function*() {
    const decoder = new FrameDecoder(options.maxMessageBytes)
    // Built in a few steps: each Effect step costs most right after the process was idle (docs/performance.md).
    const scope = yield* Effect.scope
    const { hub: events, shutdown: shutdownEvents } = QmpEvents.make({
      historySize: options.eventHistorySize ?? DEFAULT_EVENT_BUFFERS,
      bufferSize: options.eventBufferSize ?? DEFAULT_EVENT_BUFFERS
    })
    const { broadcast: errors, shutdown: shutdownErrors } = Broadcast.unscoped<QMPProtocolError>(1024)
    const disconnected = Deferred.unsafeMake<QMPDisconnected>(FiberId.none)
    const pending = new Map<number, { readonly command: string; readonly reply: OneShot.OneShot<Reply, QMPDisconnected> }>()
    // In-band commands not yet answered, in the order sent (abandoned ones included): QEMU answers
    // in-band commands in order, so an error reply without an id answers the oldest of them.
    const unanswered: Array<number> = []
    let nextId = 0
    let greeted = false
    let quitAccepted = false
    let ended: QMPDisconnected | undefined

    const { warn } = yield* Warnings.make(`QMP ${transport.label}`, scope)
    const reportError = (error: QMPProtocolError) => {
      errors.publish(error)
      warn(`QMP ${transport.label}: ${error.message}`)
    }
    /**
     * The handshake, driven by the reader: the greeting answered from its
     * callback, the answer to that settling it. A launch waits on it through
     * a callback (no fiber to wake between QEMU's messages, none for its timer).
     */
    const handshake = OneShot.make<Handshake, QMPGreetingError>()
    let negotiation: { readonly id: number; readonly greeting: Greeting; readonly enable: ReadonlyArray<string> } | undefined
    const failGreeting = (reason: "Malformed" | "Closed" | "Negotiation", detail: string, cause?: unknown) =>
      handshake.settle(Exit.fail(new QMPGreetingError({ reason, detail, cause })))

    const traffic = (direction: "send" | "receive", message: unknown) => {
      if (options.onTraffic === undefined) return
      try {
        options.onTraffic(direction, message)
      } catch (error) {
        warn(`QMP ${transport.label}: the traffic hook failed on ${direction}: ${
          error instanceof Error ? error.message : String(error)
        }`)
      }
    }

    const endSession = (error: QMPDisconnected) => {
      if (ended !== undefined) return
      ended = error
      for (const { reply } of pending.values()) reply.settle(Exit.fail(error))
      pending.clear()
      unanswered.length = 0
      events.end(error)
      errors.end()
      Deferred.unsafeDone(disconnected, Exit.succeed(error))
      if (!greeted) failGreeting("Closed", error.message, error)
      else failGreeting("Negotiation", `qmp_capabilities: ${error.message}`, error)
    }

    const complete = (id: number, reply: Reply) => {
      const waiting = pending.get(id)
      if (waiting === undefined) return false
      pending.delete(id)
      if (waiting.command === "quit" && !isErrorReply(reply)) quitAccepted = true
      waiting.reply.settle(Exit.succeed(reply))
      if (id === negotiation?.id) handshake.settle(Exit.succeed({ greeting: negotiation.greeting, enable: negotiation.enable, reply }))
      return true
    }

    const onReply = (reply: Reply) => {
      const id = reply.id
      if (id === undefined && isErrorReply(reply) && unanswered.length > 0) {
        // QEMU could not parse a request, so it has no id to echo: it answers the oldest in-band command.
        complete(unanswered.shift()!, reply)
        return
      }
      if (typeof id === "number") {
        const index = unanswered.indexOf(id)
        if (index >= 0) unanswered.splice(index, 1)
        // A number up to the last id sent, with no one waiting: the late reply of an abandoned command.
        if (complete(id, reply) || (Number.isInteger(id) && id > 0 && id <= nextId)) return
      }
      reportError(
        new QMPProtocolError({
          reason: id === undefined ? "MissingId" : "UnknownId",
          detail: id === undefined
            ? `reply without id${isErrorReply(reply) ? `: ${reply.error.class}: ${reply.error.desc}` : ""}`
            : `reply for id ${JSON.stringify(id)}, which no command is waiting for`,
          fatal: false,
          excerpt: excerpt(reply)
        })
      )
    }

    /**
     * Registers and encodes one command (the part of a send that needs no
     * fiber): it gets the next id, a reply slot, and its place among the
     * unanswered in-band commands. Fails only if the command cannot be encoded.
     */
    const begin = (command: string, args: Arguments | undefined, oob: boolean) => {
      const id = nextId + 1
      const message = oob
        ? { "exec-oob": command, ...(args === undefined ? {} : { arguments: args }), id }
        : { execute: command, ...(args === undefined ? {} : { arguments: args }), id }
      return Either.map(encodeCommand(message), (line) => {
        nextId = id
        const reply = OneShot.make<Reply, QMPDisconnected>()
        pending.set(id, { command, reply })
        if (!oob) {
          unanswered.push(id)
          if (unanswered.length > MAX_UNANSWERED) unanswered.shift()
        }
        traffic("send", message)
        return { id, line, reply }
      })
    }

    /**
     * Answers the greeting with `qmp_capabilities` from the reader's own
     * callback, as a bare client would: no fiber has to wake up between
     * QEMU's greeting and the reply it waits for.
     */
    const negotiate = (greeting: Greeting): void => {
      const enable = options.oob === true && greeting.QMP.capabilities.includes("oob") ? ["oob"] : []
      const started = begin("qmp_capabilities", enable.length > 0 ? { enable } : undefined, false)
      if (Either.isLeft(started)) return failGreeting("Negotiation", `qmp_capabilities: ${started.left.detail}`)
      negotiation = { id: started.right.id, greeting, enable }
      // A closed socket ends the session, which settles the handshake with the reason.
      transport.unsafeWrite(started.right.line)
    }

    const sink = {
      onMessage: (json: unknown) => {
        traffic("receive", json)
        const classified = classifyServerMessage(json)
        if (Either.isLeft(classified)) {
          if (!greeted) failGreeting("Malformed", classified.left.detail, classified.left)
          return reportError(classified.left)
        }
        const message = classified.right
        if (message._tag === "Greeting") {
          if (greeted) return reportError(new QMPProtocolError({ reason: "Malformed", detail: "a second greeting", fatal: false }))
          greeted = true
          return negotiate(message.message)
        }
        if (!greeted) return failGreeting("Malformed", `expected a greeting, got ${excerpt(json)}`)
        return message._tag === "Reply"
          ? onReply(message.message)
          : events.publish({ ...message.message, receivedAt: Date.now() })
      },
      onError: (error: QMPProtocolError) => {
        if (!greeted) failGreeting("Malformed", error.message, error)
        reportError(error)
      }
    }

    let fatal: QMPProtocolError | undefined
    const onChunk = (chunk: Uint8Array) => {
      if (fatal !== undefined) return
      fatal = decoder.push(chunk, sink)
      if (fatal === undefined) return
      reportError(fatal)
      endSession(new QMPDisconnected({ reason: "Protocol", detail: fatal.message, cause: fatal }))
      transport.unsafeClose()
    }

    // The session ends in the transport's own callback, so no call can see a closed socket and a live session.
    const detach = transport.attach(onChunk, (end) => {
      if (fatal === undefined) decoder.end(sink)
      endSession(
        end._tag === "Eof"
          ? new QMPDisconnected({ reason: "Eof", detail: `${transport.label}: connection closed by peer` }, true)
          : end._tag === "Closed"
          ? new QMPDisconnected({ reason: "Closed", detail: `${transport.label}: closed by client` }, true)
          : new QMPDisconnected({ reason: "Error", detail: `${transport.label}: ${end.error.message}`, cause: end.error }, true)
      )
    })
    // One finalizer for the whole session (each costs steps at every shutdown): end it, detach the reader,
    // shut the hubs down.
    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => {
        if (ended === undefined) endSession(new QMPDisconnected({ reason: "Closed", detail: "QMP client scope closed" }, true))
        detach()
        return Effect.zipRight(shutdownErrors, shutdownEvents)
      })
    )

    /** The session's end reason: a write can find the socket closed a moment before the reader reports why. */
    const endReason = Effect.suspend(() => ended !== undefined ? Effect.succeed(ended) : Deferred.await(disconnected))

    /**
     * Sends one command and waits for its reply. The command is encoded (and
     * checked against what QEMU's parser accepts) before it gets an id; the
     * wait's timer fires inside finalizers too, and an abandoned command
     * leaves the map (its late reply is told apart by id).
     */
    const exchange = <E extends { readonly _tag: string }>(
      command: string,
      args: Arguments | undefined,
      sendOptions: SendOptions | undefined,
      write: (line: string) => Effect.Effect<void, QMPDisconnected | E>
    ): Effect.Effect<Reply, SendError | E> =>
      Effect.tracerWith((tracer): Effect.Effect<Reply, SendError | E> => {
        const traced = tracer !== Tracing.builtIn
        if (ended !== undefined) return span(command, traced, undefined, Effect.fail(ended))
        const started = begin(command, args, sendOptions?.oob === true)
        if (Either.isLeft(started)) {
          return span(command, traced, undefined, Effect.fail(new QMPEncodeError({ command, ...started.left })))
        }
        const { id, line, reply } = started.right
        const timeout = sendOptions?.timeout ?? options.commandTimeout
        // A callback wait: its timer is a `setTimeout` (no fiber), which also fires inside finalizers.
        const wait = timeout === undefined ? reply.wait : reply.await({
          duration: timeout,
          onTimeout: () => new QMPTimeout({ operation: `command ${command}`, timeoutMillis: Duration.toMillis(timeout) })
        })
        return span(
          command,
          traced,
          id,
          Effect.zipRight(write(line), wait).pipe(
            Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => pending.delete(id)))
          )
        )
      })
    const span = <A, E2 extends { readonly _tag: string }>(
      command: string,
      traced: boolean,
      id: number | undefined,
      effect: Effect.Effect<A, E2>
    ) => Tracing.commandSpan(command, traced, id, options.spanAttributes, effect)
    const writeLine = (line: string) =>
      transport.unsafeWrite(line) ? Effect.void : Effect.flatMap(endReason, Effect.fail)
    /** Bytes with descriptors attached; a closed socket is this session's disconnect. */
    const writeWithFds = (fds: ReadonlyArray<number>) => (data: string) =>
      FdPassing.send(transport.duplex, data, fds).pipe(
        Effect.catchTag("TransportClosed", () => Effect.flatMap(endReason, Effect.fail))
      )

    const send = (command: string, args: Arguments | undefined, sendOptions?: SendOptions) =>
      exchange<never>(command, args, sendOptions, writeLine)

    // Handshake: the reader sent `qmp_capabilities` when the greeting came; one timer covers both.
    let negotiated: Handshake | undefined
    const waitHandshake = (timeout: Duration.DurationInput = options.greetingTimeout ?? DEFAULT_GREETING_TIMEOUT) =>
      handshake.await({
        duration: timeout,
        onTimeout: () =>
          greeted
            ? new QMPGreetingError({
              reason: "Negotiation",
              detail: `qmp_capabilities: no reply within ${Duration.format(timeout)}`
            })
            : new QMPGreetingError({
              reason: "Timeout",
              detail: `no greeting on ${transport.label} within ${Duration.format(timeout)}`
            })
      }).pipe(Effect.flatMap((result) => {
        if (isErrorReply(result.reply)) {
          return new QMPGreetingError({
            reason: "Negotiation",
            detail: `qmp_capabilities refused: ${result.reply.error.class}: ${result.reply.error.desc}`
          })
        }
        negotiated = result
        return Effect.void
      }))

    return {
      // Traced, its span covers the wait for the greeting too.
      handshake: (timeout) =>
        Effect.tracerWith((tracer) => span("qmp_capabilities", tracer !== Tracing.builtIn, undefined, waitHandshake(timeout))),
      // Read before the handshake (a wrapper copying the client does), they are undefined; nobody else can.
      get greeting() {
        return negotiated?.greeting as Greeting
      },
      get capabilities() {
        return negotiated?.enable as ReadonlyArray<string>
      },
      send,
      withFds: (fds) => ({ send: (command, args, sendOptions) => exchange(command, args, sendOptions, writeWithFds(fds)) }),
      sendFd: (fd) => Effect.suspend(() => ended !== undefined ? Effect.fail(ended) : writeWithFds([fd])(" ")),
      events,
      protocolErrors: errors.stream,
      isConnected: Effect.sync(() => ended === undefined),
      awaitDisconnect: Deferred.await(disconnected),
      close: Effect.suspend(() =>
        ended !== undefined ? Effect.void : Effect.zipRight(transport.close, Deferred.await(disconnected))
      ).pipe(Effect.asVoid),
      quitAccepted: () => quitAccepted
    } satisfies Session
  })
