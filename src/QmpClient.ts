/**
 * One QMP session over a byte stream: greeting and capability negotiation,
 * commands matched to replies by id (many in flight from many fibers), event
 * fan-out to any number of subscribers, and the seed's event cache.
 *
 * See `docs/qmp.md` for the design: reader callback, pending map, event
 * fan-out and teardown.
 *
 * @module
 */
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Duplex } from "node:stream"
import {
  type FdPassingError,
  QMPCommandError,
  QMPConnectError,
  type QMPDecodeError,
  QMPDisconnected,
  QMPEncodeError,
  QMPGreetingError,
  QMPProtocolError,
  QMPSchemaDrift,
  QMPTimeout
} from "./Errors.js"
import * as Fanout from "./internal/fanout.js"
import * as FdPassing from "./internal/fdPassing.js"
import * as Transport from "./internal/transport.js"
import * as Qapi from "./Qapi.js"
import {
  type Arguments,
  classifyServerMessage,
  encodeCommand,
  type Event,
  type EventFilter,
  FrameDecoder,
  type Greeting,
  excerpt,
  isErrorReply,
  matchesAny,
  type Reply
} from "./QmpProtocol.js"

/** Options of one command. */
export interface ExecuteOptions {
  /** Fail with `QMPTimeout` if no reply comes in time. Defaults to the client's `commandTimeout`. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Send as `exec-oob` (needs the `oob` capability negotiated). */
  readonly oob?: boolean | undefined
  /**
   * Check arguments and decode the result with the generated QAPI Schemas
   * (see `Qapi`); a mismatch is a `QMPDecodeError`. Defaults to the client's `decode`.
   */
  readonly decode?: boolean | undefined
}

/** Options of an event wait. */
export interface EventWaitOptions {
  /** A sub-object the event must contain (the seed's `match`). */
  readonly match?: unknown
  /** Default 60 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Decode the event's data with its generated Schema. Defaults to the client's `decode`. */
  readonly decode?: boolean | undefined
}

/** Options of a QMP session. */
export interface QmpClientOptions {
  /** How long to wait for the greeting and the `qmp_capabilities` reply. Default 30 s. */
  readonly greetingTimeout?: Duration.DurationInput | undefined
  /** Default per-command timeout. Default: none (a dead peer is still detected by EOF). */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** Ask for out-of-band execution if the server offers it. Default false. */
  readonly oob?: boolean | undefined
  /** Cap on one incoming message; past it the session fails. Default 10 MiB. */
  readonly maxMessageBytes?: number | undefined
  /** How many events the cache behind `getEvents`/`eventsWait` keeps (oldest dropped). Default 10,000. */
  readonly eventHistorySize?: number | undefined
  /** How many undelivered events one slow subscriber may lag behind (oldest dropped). Default 10,000. */
  readonly eventBufferSize?: number | undefined
  /**
   * Called with every message sent and received, as its JSON value; for traffic logs. Keep it cheap.
   * A hook that throws is logged (coalesced) and cannot break the session.
   */
  readonly onTraffic?: ((direction: "send" | "receive", message: unknown) => void) | undefined
  /**
   * Decode every typed command's arguments and result, and every typed event
   * waited for, with the generated QAPI Schemas. Default false: typed, unchecked.
   */
  readonly decode?: boolean | undefined
  /**
   * Compare the server's QAPI schema with the generated one after the
   * handshake (one `query-qmp-schema`): `"log"` logs a warning listing what
   * differs, `"fail"` fails the connection with `QMPSchemaDrift`. Default `"ignore"`.
   */
  readonly schemaCheck?: Qapi.SchemaCheck | undefined
}

/** The result of `executeAndWait`: the command's return value and the event it caused. */
export interface ExecuteAndWaitResult {
  readonly result: unknown
  readonly event: Event
}

/** Events taken from a subscription, in order; `take` gives `Option.none()` once the session has ended. */
export type EventSubscription = Fanout.Subscription<Event>

interface EventWaiter {
  readonly filters: ReadonlyArray<EventFilter>
  readonly deferred: Deferred.Deferred<Event, QMPDisconnected>
}

/** Errors `executeRaw` can end in: an error reply is a value there, not a failure. */
export type RawCommandError = QMPTimeout | QMPDisconnected | QMPEncodeError

/** Errors a command can end in. */
export type CommandError = QMPCommandError | QMPTimeout | QMPDisconnected | QMPEncodeError

/** Errors setting up a session: the greeting and negotiation, and the optional schema check. */
export type SessionError = QMPGreetingError | QMPSchemaDrift

/**
 * A file descriptor to pass to QEMU: an open descriptor of this process (it
 * stays open and yours; QEMU gets a copy), or a file the library opens for the
 * send and closes after (read-only unless `writable`).
 */
export type FdSource = FdPassing.FdSource

/** What `add-fd` returns: the set the descriptor went into and its number inside QEMU. */
export type AddFdInfo = Qapi.CommandResult<"add-fd">

/** Options of `addFd`. */
export interface AddFdOptions extends ExecuteOptions {
  /** The set to add to; QEMU picks a new one when absent. */
  readonly fdsetId?: number | undefined
  /** A free-form note QEMU shows in `query-fdsets`. */
  readonly opaque?: string | undefined
}

/** A live QMP session. */
export interface QmpClientService {
  /** The server's greeting (QEMU version and offered capabilities). */
  readonly greeting: Greeting
  /** The capabilities enabled by negotiation. */
  readonly capabilities: ReadonlyArray<string>
  /**
   * Runs a command; succeeds with its `return` value, fails with
   * `QMPCommandError` on an error reply. Commands of the generated QAPI schema
   * are typed (arguments and result; see `Qapi`); other names are untyped.
   * `QMPDecodeError` happens only when decoding is on.
   */
  readonly execute: Qapi.TypedExecute<ExecuteOptions, CommandError>
  /** Runs a command and returns the whole reply, error replies included (the seed's `qmp()`). */
  readonly executeRaw: (
    command: string,
    args?: Arguments | undefined,
    options?: ExecuteOptions
  ) => Effect.Effect<Reply, RawCommandError>
  /** Runs a human monitor (HMP) command line and returns its output. */
  readonly hmp: (commandLine: string, options?: ExecuteOptions) => Effect.Effect<string, CommandError>
  /**
   * Subscribes to events now and runs the command, then waits for the first
   * event matching `filters` that arrived after the subscription, so an
   * event QEMU sends before the command's reply cannot be missed.
   */
  readonly executeAndWait: (
    command: string,
    args: Arguments | undefined,
    filters: string | ReadonlyArray<EventFilter>,
    options?: ExecuteOptions
  ) => Effect.Effect<ExecuteAndWaitResult, CommandError>
  /**
   * Runs a command with file descriptors attached to its bytes (SCM_RIGHTS),
   * for commands that take one from the monitor (`getfd`, `add-fd`). Sending
   * them with the command, rather than before it, keeps descriptor and
   * command paired even when other fibers pass descriptors at the same time.
   * Needs a unix-socket monitor and the native helper.
   */
  readonly executeWithFds: (
    command: string,
    args: Arguments | undefined,
    fds: ReadonlyArray<FdSource>,
    options?: ExecuteOptions
  ) => Effect.Effect<unknown, CommandError | FdPassingError>
  /**
   * The seed's `send_fd_scm`: sends one descriptor with a single space byte;
   * QEMU holds it for the next `getfd`/`add-fd`. Prefer `getfd`/`addFd`,
   * which pair the descriptor with its command.
   */
  readonly sendFdScm: (source: FdSource) => Effect.Effect<void, FdPassingError | QMPDisconnected>
  /** Passes a descriptor and names it with `getfd`, for commands that take an fd name. */
  readonly getfd: (
    fdname: string,
    source: FdSource,
    options?: ExecuteOptions
  ) => Effect.Effect<void, CommandError | FdPassingError>
  /** Passes a descriptor into an fd set with `add-fd`, for `/dev/fdset/N` paths. */
  readonly addFd: (source: FdSource, options?: AddFdOptions) => Effect.Effect<AddFdInfo, CommandError | FdPassingError>
  /** Every event from subscription on; ends when the session ends. Each run is its own subscriber. */
  readonly events: Stream.Stream<Event>
  /**
   * The events with these names, typed, from subscription on (decoded when
   * the client's `decode` is on, in which case a mismatch ends the stream).
   */
  readonly eventsNamed: <K extends Qapi.EventName>(
    ...names: ReadonlyArray<K>
  ) => Stream.Stream<Qapi.TypedEvent<K>, QMPDecodeError>
  /** Subscribes now, to take events later: nothing that arrives after this is missed. */
  readonly subscribe: Effect.Effect<EventSubscription, never, Scope.Scope>
  /**
   * The seed's `event_wait`: the first cached event named `name` that matches,
   * else the first new one. Default timeout 60 s. Events of the generated
   * QAPI schema come typed.
   */
  readonly eventWait: Qapi.TypedEventWait<EventWaitOptions, QMPTimeout | QMPDisconnected>
  /** The seed's `events_wait`: like `eventWait` for any of several filters; one timeout for the whole wait. */
  readonly eventsWait: (
    filters: ReadonlyArray<EventFilter>,
    options?: { readonly timeout?: Duration.DurationInput | undefined }
  ) => Effect.Effect<Event, QMPTimeout | QMPDisconnected>
  /** The seed's `get_qmp_event()`: takes the oldest cached event, if any. */
  readonly getEvent: Effect.Effect<Option.Option<Event>>
  /** The seed's `get_qmp_events()`: takes every cached event. */
  readonly getEvents: Effect.Effect<ReadonlyArray<Event>>
  /** Empties the event cache. */
  readonly clearEvents: Effect.Effect<void>
  /** Non-fatal protocol errors (garbage lines, unknown ids, malformed messages) as they happen. */
  readonly protocolErrors: Stream.Stream<QMPProtocolError>
  /** True until the session ends. */
  readonly isConnected: Effect.Effect<boolean>
  /** Completes with the reason once the session ends. */
  readonly awaitDisconnect: Effect.Effect<QMPDisconnected>
  /** Ends the session: pending commands fail with `QMPDisconnected`, streams end. Idempotent. */
  readonly close: Effect.Effect<void>
}

/** The QMP session service. */
export class QmpClient extends Context.Tag("qemu-machine/QmpClient")<QmpClient, QmpClientService>() {}

const DEFAULT_GREETING_TIMEOUT = Duration.seconds(30)
const DEFAULT_EVENT_TIMEOUT = Duration.seconds(60)
/** In-band commands remembered for id-less error replies; past this many unanswered, the oldest is forgotten. */
const MAX_UNANSWERED = 65_536
const WARNING_INTERVAL = Duration.seconds(1)

/**
 * Runs a QMP session over an already transport. The scope ends the session
 * and closes the transport.
 *
 * @internal
 */
export const fromTransport = (
  transport: Transport.ByteTransport,
  options: QmpClientOptions = {}
): Effect.Effect<QmpClientService, SessionError, Scope.Scope> =>
  Effect.gen(function*() {
    const decoder = new FrameDecoder(options.maxMessageBytes)
    const historySize = options.eventHistorySize ?? 10_000
    const commandTimeout = options.commandTimeout
    const onTraffic = options.onTraffic

    const eventHub = yield* Fanout.make<Event>(options.eventBufferSize ?? 10_000)
    const errorHub = yield* Effect.acquireRelease(PubSub.sliding<QMPProtocolError>(1024), PubSub.shutdown)
    const greetingDeferred = yield* Deferred.make<Greeting, QMPGreetingError>()
    const disconnected = yield* Deferred.make<QMPDisconnected>()

    const pending = new Map<number, Deferred.Deferred<Reply, QMPDisconnected>>()
    // In-band commands not yet answered, in the order sent (abandoned ones included): QEMU answers
    // in-band commands in order, so an error reply without an id answers the oldest of them.
    const unanswered: Array<number> = []
    const history: Array<Event> = []
    // Event waits: completed synchronously by the reader, cheaper than a subscription per wait.
    const waiters = new Set<EventWaiter>()
    let nextId = 0
    let greeted = false
    let ended: QMPDisconnected | undefined

    const endSession = (error: QMPDisconnected) => {
      if (ended !== undefined) return
      ended = error
      for (const deferred of pending.values()) Deferred.unsafeDone(deferred, Exit.fail(error))
      pending.clear()
      for (const waiter of waiters) Deferred.unsafeDone(waiter.deferred, Exit.fail(error))
      waiters.clear()
      eventHub.end()
      Deferred.unsafeDone(disconnected, Exit.succeed(error))
      Deferred.unsafeDone(
        greetingDeferred,
        Exit.fail(new QMPGreetingError({ reason: "Closed", detail: error.message, cause: error }))
      )
    }

    // Warnings from plain callbacks go through a bounded queue to one logging fiber, which
    // coalesces them: a flood costs a counter, not a log line per message.
    const warnings = yield* Queue.dropping<string>(256)
    let droppedWarnings = 0
    const warn = (text: string) => {
      if (!warnings.unsafeOffer(text)) droppedWarnings++
    }
    const reportError = (error: QMPProtocolError) => {
      errorHub.unsafeOffer(error)
      warn(`QMP ${transport.label}: ${error.message}`)
    }

    const traffic = (direction: "send" | "receive", message: unknown) => {
      if (onTraffic === undefined) return
      try {
        onTraffic(direction, message)
      } catch (error) {
        warn(`QMP ${transport.label}: the traffic hook failed on ${direction}: ${
          error instanceof Error ? error.message : String(error)
        }`)
      }
    }

    const forget = (id: number) => {
      if (unanswered[0] === id) unanswered.shift()
      else {
        const index = unanswered.indexOf(id)
        if (index >= 0) unanswered.splice(index, 1)
      }
    }

    const onReply = (reply: Reply) => {
      const id = reply.id
      if (id === undefined && isErrorReply(reply) && unanswered.length > 0) {
        // QEMU could not parse a request (so it has no id to echo): the oldest in-band command.
        const oldest = unanswered.shift()!
        const deferred = pending.get(oldest)
        if (deferred !== undefined) {
          pending.delete(oldest)
          Deferred.unsafeDone(deferred, Exit.succeed(reply))
        }
        return
      }
      if (id === undefined) {
        reportError(
          new QMPProtocolError({
            reason: "MissingId",
            detail: isErrorReply(reply)
              ? `reply without id: ${reply.error.class}: ${reply.error.desc}`
              : "reply without id",
            fatal: false,
            excerpt: JSON.stringify(reply).slice(0, 200)
          })
        )
        return
      }
      if (typeof id === "number") forget(id)
      const deferred = typeof id === "number" ? pending.get(id) : undefined
      if (deferred !== undefined) {
        pending.delete(id as number)
        Deferred.unsafeDone(deferred, Exit.succeed(reply))
      } else if (typeof id === "number" && Number.isInteger(id) && id > 0 && id <= nextId) {
        // The late reply of a command that timed out or was interrupted (ids only grow).
      } else {
        reportError(
          new QMPProtocolError({
            reason: "UnknownId",
            detail: `reply for id ${JSON.stringify(id)}, which no command is waiting for`,
            fatal: false,
            excerpt: JSON.stringify(reply).slice(0, 200)
          })
        )
      }
    }

    const onEvent = (event: Event) => {
      history.push(event)
      if (history.length > historySize) history.shift()
      eventHub.publish(event)
      if (waiters.size === 0) return
      let consumed = false
      for (const waiter of waiters) {
        if (matchesAny(event, waiter.filters)) {
          waiters.delete(waiter)
          consumed = true
          Deferred.unsafeDone(waiter.deferred, Exit.succeed(event))
        }
      }
      if (consumed) removeFromHistory(event)
    }

    const sink = {
      onMessage: (json: unknown) => {
        traffic("receive", json)
        const classified = classifyServerMessage(json)
        if (classified._tag === "Left") {
          if (!greeted) {
            Deferred.unsafeDone(
              greetingDeferred,
              Exit.fail(
                new QMPGreetingError({ reason: "Malformed", detail: classified.left.detail, cause: classified.left })
              )
            )
          }
          reportError(classified.left)
          return
        }
        const message = classified.right
        if (!greeted && message._tag !== "Greeting") {
          Deferred.unsafeDone(
            greetingDeferred,
            Exit.fail(
              new QMPGreetingError({ reason: "Malformed", detail: `expected a greeting, got ${excerpt(json)}` })
            )
          )
          return
        }
        switch (message._tag) {
          case "Reply":
            return onReply(message.message)
          case "Event":
            return onEvent(message.message)
          case "Greeting":
            if (greeted) {
              reportError(
                new QMPProtocolError({ reason: "Malformed", detail: "a second greeting", fatal: false })
              )
              return
            }
            greeted = true
            Deferred.unsafeDone(greetingDeferred, Exit.succeed(message.message))
        }
      },
      onError: (error: QMPProtocolError) => {
        if (!greeted) {
          Deferred.unsafeDone(
            greetingDeferred,
            Exit.fail(new QMPGreetingError({ reason: "Malformed", detail: error.message, cause: error }))
          )
        }
        reportError(error)
      }
    }

    let fatal: QMPProtocolError | undefined
    const onChunk = (chunk: Uint8Array) => {
      if (fatal !== undefined) return
      fatal = decoder.push(chunk, sink)
      if (fatal !== undefined) {
        reportError(fatal)
        endSession(new QMPDisconnected({ reason: "Protocol", detail: fatal.message, cause: fatal }))
        transport.unsafeClose()
      }
    }

    // The first warning at once, then at most one summary a second.
    yield* Effect.gen(function*() {
      yield* Effect.logWarning(yield* Queue.take(warnings))
      yield* Effect.sleep(WARNING_INTERVAL)
      const more = yield* Queue.takeAll(warnings)
      const count = more.length + droppedWarnings
      droppedWarnings = 0
      if (count > 0) {
        yield* Effect.logWarning(
          `QMP ${transport.label}: ${count} more warnings in the last ${Duration.format(WARNING_INTERVAL)}; the last: ${
            Chunk.unsafeLast(more)
          }`
        )
      }
    }).pipe(Effect.forever, Effect.forkScoped)

    // The session ends in the transport's own callback, so no call can see a closed socket and a live session.
    yield* transport.run(onChunk, (end) => {
      if (fatal === undefined) decoder.end(sink)
      endSession(
        end._tag === "Eof"
          ? new QMPDisconnected({ reason: "Eof", detail: `${transport.label}: connection closed by peer` })
          : end._tag === "Closed"
          ? new QMPDisconnected({ reason: "Closed", detail: `${transport.label}: closed by client` })
          : new QMPDisconnected({
            reason: "Error",
            detail: `${transport.label}: ${end.error.message}`,
            cause: end.error
          })
      )
    }).pipe(Effect.forkScoped)
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => endSession(new QMPDisconnected({ reason: "Closed", detail: "QMP client scope closed" })))
    )

    /** The command's JSON text, or why it cannot be sent (checked against what QEMU's parser accepts). */
    const commandLine = (
      command: string,
      args: Arguments | undefined,
      oob: boolean | undefined,
      id: number
    ): Either.Either<string, QMPEncodeError> => {
      const message = oob === true
        ? args === undefined ? { "exec-oob": command, id } : { "exec-oob": command, arguments: args, id }
        : args === undefined
        ? { execute: command, id }
        : { execute: command, arguments: args, id }
      const line = encodeCommand(message)
      if (Either.isLeft(line)) return Either.left(new QMPEncodeError({ command, ...line.left }))
      traffic("send", message)
      return Either.right(line.right)
    }

    /** The session's end reason: a write can find the socket closed a moment before the reader reports why. */
    const endReason: Effect.Effect<QMPDisconnected> = Effect.suspend(() =>
      ended !== undefined ? Effect.succeed(ended) : Deferred.await(disconnected)
    )

    const awaitReply = (
      command: string,
      id: number,
      deferred: Deferred.Deferred<Reply, QMPDisconnected>,
      timeout: Duration.DurationInput | undefined
    ): Effect.Effect<Reply, QMPTimeout | QMPDisconnected> => {
      // Interruptible, so timeouts hold even when called from a finalizer (e.g. `quit` at shutdown).
      const wait = timeout === undefined
        ? Deferred.await(deferred)
        : Effect.interruptible(Deferred.await(deferred)).pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new QMPTimeout({ operation: `command ${command}`, timeoutMillis: Duration.toMillis(timeout) })
          })
        )
      // An abandoned command leaves the map; its late reply is told apart by its id (ids only grow).
      return Effect.onExit(wait, (exit) => Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => pending.delete(id)))
    }

    /** Registers a command and its id; `unanswered` keeps in-band ones in order for id-less error replies. */
    const register = (deferred: Deferred.Deferred<Reply, QMPDisconnected>, oob: boolean | undefined) => {
      const id = ++nextId
      pending.set(id, deferred)
      if (oob !== true) {
        unanswered.push(id)
        if (unanswered.length > MAX_UNANSWERED) unanswered.shift()
      }
      return id
    }
    const unregister = (id: number) => {
      pending.delete(id)
      forget(id)
    }

    const executeRaw = (
      command: string,
      args?: Arguments | undefined,
      executeOptions?: ExecuteOptions
    ): Effect.Effect<Reply, RawCommandError> =>
      Effect.flatMap(Deferred.make<Reply, QMPDisconnected>(), (deferred): Effect.Effect<Reply, RawCommandError> => {
        if (ended !== undefined) return Effect.fail(ended)
        const line = commandLine(command, args, executeOptions?.oob, nextId + 1)
        if (Either.isLeft(line)) return Effect.fail(line.left)
        const id = register(deferred, executeOptions?.oob)
        if (!transport.unsafeWrite(line.right)) {
          unregister(id)
          return Effect.flatMap(endReason, Effect.fail)
        }
        return awaitReply(command, id, deferred, executeOptions?.timeout ?? commandTimeout)
      })

    /** Bytes with descriptors attached; a closed socket is this session's disconnect. */
    const sendWithFds = (data: string, fds: ReadonlyArray<number>) =>
      FdPassing.send(transport.duplex, data, fds).pipe(
        Effect.catchTag("TransportClosed", () => Effect.flatMap(endReason, Effect.fail))
      )

    const executeWithFds = (
      command: string,
      args: Arguments | undefined,
      sources: ReadonlyArray<FdSource>,
      executeOptions?: ExecuteOptions
    ): Effect.Effect<unknown, CommandError | FdPassingError> =>
      Effect.scoped(Effect.gen(function*() {
        const fds = yield* Effect.forEach(sources, FdPassing.open)
        const deferred = yield* Deferred.make<Reply, QMPDisconnected>()
        if (ended !== undefined) return yield* ended
        const line = commandLine(command, args, executeOptions?.oob, nextId + 1)
        if (Either.isLeft(line)) return yield* line.left
        const id = register(deferred, executeOptions?.oob)
        yield* sendWithFds(line.right, fds).pipe(Effect.onError(() => Effect.sync(() => unregister(id))))
        const reply = yield* awaitReply(command, id, deferred, executeOptions?.timeout ?? commandTimeout)
        return yield* toResult(command)(reply)
      }))

    const sendFdScm = (source: FdSource): Effect.Effect<void, FdPassingError | QMPDisconnected> =>
      Effect.scoped(Effect.gen(function*() {
        const fd = yield* FdPassing.open(source)
        if (ended !== undefined) return yield* ended
        yield* sendWithFds(" ", [fd])
      }))

    const toResult = (command: string) => (reply: Reply): Effect.Effect<unknown, QMPCommandError> =>
      isErrorReply(reply)
        ? Effect.fail(new QMPCommandError({ command, class: reply.error.class, desc: reply.error.desc }))
        : Effect.succeed(reply.return)

    const executeUnchecked = (
      command: string,
      args: Arguments | undefined,
      executeOptions: ExecuteOptions | undefined
    ): Effect.Effect<unknown, CommandError> =>
      Effect.flatMap(executeRaw(command, args, executeOptions), toResult(command))

    const decodeByDefault = options.decode === true
    const execute = (
      command: string,
      args?: Arguments | undefined,
      executeOptions?: ExecuteOptions
    ): Effect.Effect<unknown, CommandError | QMPDecodeError> => {
      const run = executeUnchecked(command, args, executeOptions)
      return (executeOptions?.decode ?? decodeByDefault)
        ? Effect.zipRight(
          Qapi.checkArguments(command, args),
          Effect.flatMap(run, (result) => Qapi.decodeResult(command, result))
        )
        : run
    }

    const removeFromHistory = (event: Event) => {
      const index = history.lastIndexOf(event)
      if (index >= 0) history.splice(index, 1)
    }

    /** Registers a waiter now (synchronously), so no event after this point is missed. */
    const addWaiter = (filters: ReadonlyArray<EventFilter>): EventWaiter => {
      const waiter: EventWaiter = { filters, deferred: Deferred.unsafeMake(FiberId.none) }
      if (ended !== undefined) Deferred.unsafeDone(waiter.deferred, Exit.fail(ended))
      else waiters.add(waiter)
      return waiter
    }

    /** Waits for a waiter's event; the timer only starts if the event has not come yet. */
    const awaitWaiter = (
      waiter: EventWaiter,
      timeout: Duration.DurationInput | undefined
    ): Effect.Effect<Event, QMPTimeout | QMPDisconnected> =>
      Effect.flatMap(Deferred.poll(waiter.deferred), (done) => {
        if (Option.isSome(done)) return done.value
        const duration = timeout === undefined ? DEFAULT_EVENT_TIMEOUT : Duration.decode(timeout)
        return Effect.timeoutFail(Effect.interruptible(Deferred.await(waiter.deferred)), {
          duration,
          onTimeout: () =>
            new QMPTimeout({
              operation: `event wait for ${waiter.filters.map((f) => f.name).join(" | ")}`,
              timeoutMillis: Duration.toMillis(duration)
            })
        })
      }).pipe(Effect.ensuring(Effect.sync(() => waiters.delete(waiter))))

    const eventsWait = (
      filters: ReadonlyArray<EventFilter>,
      waitOptions?: { readonly timeout?: Duration.DurationInput | undefined }
    ): Effect.Effect<Event, QMPTimeout | QMPDisconnected> =>
      Effect.suspend(() => {
        const index = history.findIndex((event) => matchesAny(event, filters))
        if (index >= 0) return Effect.succeed(history.splice(index, 1)[0]!)
        return awaitWaiter(addWaiter(filters), waitOptions?.timeout)
      })

    const eventWait = (
      name: string,
      waitOptions?: EventWaitOptions
    ): Effect.Effect<Event, QMPTimeout | QMPDisconnected | QMPDecodeError> => {
      const wait = eventsWait([{ name, match: waitOptions?.match }], { timeout: waitOptions?.timeout })
      return (waitOptions?.decode ?? decodeByDefault) ? Effect.flatMap(wait, Qapi.decodeEvent) : wait
    }

    const normalizeFilters = (filters: string | ReadonlyArray<EventFilter>): ReadonlyArray<EventFilter> =>
      typeof filters === "string" ? [{ name: filters }] : filters

    const executeAndWait = (
      command: string,
      args: Arguments | undefined,
      filters: string | ReadonlyArray<EventFilter>,
      executeOptions?: ExecuteOptions
    ): Effect.Effect<ExecuteAndWaitResult, CommandError> =>
      Effect.suspend(() => {
        const waiter = addWaiter(normalizeFilters(filters))
        return Effect.flatMap(
          Effect.onError(
            executeUnchecked(command, args, executeOptions),
            () => Effect.sync(() => waiters.delete(waiter))
          ),
          (result) => Effect.map(awaitWaiter(waiter, executeOptions?.timeout), (event) => ({ result, event }))
        )
      })

    const close = Effect.suspend(() =>
      ended !== undefined ? Effect.void : Effect.zipRight(transport.close, Deferred.await(disconnected))
    ).pipe(Effect.asVoid)

    // Handshake.
    const greetingTimeout = options.greetingTimeout ?? DEFAULT_GREETING_TIMEOUT
    const greeting = yield* Deferred.await(greetingDeferred).pipe(
      Effect.timeoutFail({
        duration: greetingTimeout,
        onTimeout: () =>
          new QMPGreetingError({
            reason: "Timeout",
            detail: `no greeting on ${transport.label} within ${Duration.format(greetingTimeout)}`
          })
      })
    )
    const enable = options.oob === true && greeting.QMP.capabilities.includes("oob") ? ["oob"] : []
    const negotiation = yield* executeRaw(
      "qmp_capabilities",
      enable.length > 0 ? { enable } : undefined,
      { timeout: greetingTimeout }
    ).pipe(
      Effect.mapError((cause) =>
        new QMPGreetingError({ reason: "Negotiation", detail: `qmp_capabilities: ${cause.message}`, cause })
      )
    )
    if (isErrorReply(negotiation)) {
      return yield* new QMPGreetingError({
        reason: "Negotiation",
        detail: `qmp_capabilities refused: ${negotiation.error.class}: ${negotiation.error.desc}`
      })
    }

    const service: QmpClientService = {
      greeting,
      capabilities: enable,
      // One implementation behind both overloads: typed names differ only in their static types.
      execute: execute as QmpClientService["execute"],
      executeRaw,
      hmp: (commandLine, hmpOptions) =>
        Effect.map(executeUnchecked("human-monitor-command", { "command-line": commandLine }, hmpOptions), String),
      executeAndWait,
      executeWithFds,
      sendFdScm,
      getfd: (fdname, source, fdOptions) =>
        Effect.asVoid(executeWithFds("getfd", { fdname }, [source], fdOptions)),
      addFd: (source, fdOptions) =>
        Effect.map(
          executeWithFds(
            "add-fd",
            {
              ...(fdOptions?.fdsetId === undefined ? {} : { "fdset-id": fdOptions.fdsetId }),
              ...(fdOptions?.opaque === undefined ? {} : { opaque: fdOptions.opaque })
            },
            [source],
            fdOptions
          ),
          (result) => result as AddFdInfo
        ),
      events: eventHub.stream,
      eventsNamed: <K extends Qapi.EventName>(...names: ReadonlyArray<K>) => {
        const typed = eventHub.stream.pipe(Stream.filter((event) => names.includes(event.event as K)))
        return (decodeByDefault ? Stream.mapEffect(typed, Qapi.decodeEvent) : typed) as unknown as Stream.Stream<
          Qapi.TypedEvent<K>,
          QMPDecodeError
        >
      },
      subscribe: eventHub.subscribe,
      eventWait: eventWait as QmpClientService["eventWait"],
      eventsWait,
      getEvent: Effect.sync(() => Option.fromNullable(history.shift())),
      getEvents: Effect.sync(() => history.splice(0)),
      clearEvents: Effect.sync(() => {
        history.length = 0
      }),
      protocolErrors: Stream.fromPubSub(errorHub),
      isConnected: Effect.sync(() => ended === undefined),
      awaitDisconnect: Deferred.await(disconnected),
      close
    }
    const schemaCheck = options.schemaCheck ?? "ignore"
    if (schemaCheck !== "ignore") yield* checkSchema(service, schemaCheck)
    return service
  })

/** The drift check at connect: compares the server's schema with the generated one and logs or fails. */
const checkSchema = (
  client: QmpClientService,
  mode: "log" | "fail"
): Effect.Effect<void, QMPSchemaDrift> =>
  Effect.gen(function*() {
    const version = client.greeting.QMP.version.qemu
    const live = `${version.major}.${version.minor}.${version.micro}`
    const report = yield* Effect.either(Qapi.checkDrift(client))
    const summary = report._tag === "Left"
      ? `could not read the schema: ${report.left.message}`
      : report.right.identical
      ? undefined
      : Qapi.formatDrift(report.right)
    if (summary === undefined) {
      return yield* Effect.logDebug(`QAPI schema matches the generated one (QEMU ${live})`)
    }
    const drift = new QMPSchemaDrift({ generatedFrom: Qapi.generatedFrom.version, live, summary })
    if (mode === "fail") return yield* drift
    yield* Effect.logWarning(drift.message)
  })

/**
 * A QMP session over a connected duplex, e.g. the socket pair end Node gives
 * for an extra `'pipe'` stdio slot of a spawned QEMU. The scope's end closes it.
 */
export const make = (
  duplex: Duplex,
  options: QmpClientOptions & { readonly label?: string | undefined } = {}
): Effect.Effect<QmpClientService, SessionError, Scope.Scope> =>
  Effect.flatMap(
    Transport.fromDuplex(duplex, options.label ?? "socketpair"),
    (transport) => fromTransport(transport, options)
  )

/** Options for transports that connect or accept. */
export interface ConnectOptions extends QmpClientOptions {
  /** How long a connect or an accept may take. Default 30 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

const connectWith = (
  netOptions: { readonly path: string } | { readonly host: string; readonly port: number },
  address: string,
  options: ConnectOptions
): Effect.Effect<QmpClientService, SessionError | QMPConnectError, Scope.Scope> =>
  Transport.connect(netOptions, address, options.connectTimeout ?? DEFAULT_GREETING_TIMEOUT).pipe(
    Effect.mapError((e) => new QMPConnectError({ address, detail: e.detail, cause: e.error })),
    Effect.flatMap((transport) => fromTransport(transport, options))
  )

/** Connects to a QMP server listening on a unix socket path. */
export const connectUnix = (
  path: string,
  options: ConnectOptions = {}
): Effect.Effect<QmpClientService, SessionError | QMPConnectError, Scope.Scope> =>
  connectWith({ path }, `unix:${path}`, options)

/** Connects to a QMP server on TCP. */
export const connectTcp = (
  host: string,
  port: number,
  options: ConnectOptions = {}
): Effect.Effect<QmpClientService, SessionError | QMPConnectError, Scope.Scope> =>
  connectWith({ host, port }, `tcp:${host}:${port}`, options)

/**
 * Listens on a unix path and runs the session on the first connection (the
 * seed's `server=True`, for QEMU started with `-chardev socket,path=...`
 * without `server=on`). `connectTimeout` bounds the accept.
 */
export const acceptUnix = (
  path: string,
  options: ConnectOptions = {}
): Effect.Effect<QmpClientService, SessionError | QMPConnectError, Scope.Scope> =>
  Effect.gen(function*() {
    const address = `unix:${path}`
    const listener = yield* Transport.listen({ path }).pipe(
      Effect.mapError((e) => new QMPConnectError({ address, detail: e.detail, cause: e.error }))
    )
    const transport = yield* listener.accept(options.connectTimeout ?? DEFAULT_GREETING_TIMEOUT).pipe(
      Effect.mapError((e) => new QMPConnectError({ address, detail: e.detail, cause: e.error }))
    )
    return yield* fromTransport(transport, options)
  })

/** A `QmpClient` connected to a unix socket path. */
export const layerUnix = (
  path: string,
  options?: ConnectOptions
): Layer.Layer<QmpClient, SessionError | QMPConnectError> => Layer.scoped(QmpClient, connectUnix(path, options))

/** A `QmpClient` connected over TCP. */
export const layerTcp = (
  host: string,
  port: number,
  options?: ConnectOptions
): Layer.Layer<QmpClient, SessionError | QMPConnectError> =>
  Layer.scoped(QmpClient, connectTcp(host, port, options))

/** A `QmpClient` on the first connection accepted on a unix path. */
export const layerAcceptUnix = (
  path: string,
  options?: ConnectOptions
): Layer.Layer<QmpClient, SessionError | QMPConnectError> => Layer.scoped(QmpClient, acceptUnix(path, options))
