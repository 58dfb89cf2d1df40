/**
 * One QMP session over a byte stream: greeting and capability negotiation,
 * commands matched to replies by id (many in flight from many fibers), event
 * fan-out to any number of subscribers, and the event cache of QEMU's Python
 * `QEMUMachine`. Each command runs in a span named after it.
 *
 * The protocol engine is `internal/qmpSession.ts`, the event side
 * `internal/qmpEvents.ts`; see `docs/qmp.md`.
 *
 * @module
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Duplex } from "node:stream"
import {
  type FdPassingError,
  QMPCommandError,
  QMPConnectError,
  type QMPDecodeError,
  type QMPDisconnected,
  type QMPEncodeError,
  type QMPGreetingError,
  type QMPProtocolError,
  type QMPSchemaDrift,
  type QMPTimeout
} from "./Errors.js"
import * as FdPassing from "./internal/fdPassing.js"
import type { QmpClientOptions } from "./internal/qmpOptions.js"
import * as QmpSession from "./internal/qmpSession.js"
import * as Transport from "./internal/transport.js"
import * as Qapi from "./Qapi.js"
import { type Arguments, type Event, type EventFilter, type Greeting, isErrorReply, type Reply } from "./QmpProtocol.js"
import * as Tracing from "./internal/tracing.js"

/** Options of one command. */
export interface ExecuteOptions {
  /** Fail with `QMPTimeout` if no reply comes in time. Defaults to the client's `commandTimeout`. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Send as `exec-oob` (needs the `oob` capability negotiated). */
  readonly oob?: boolean | undefined
  /** Check arguments and decode the result with the generated QAPI Schemas (see `Qapi`). Defaults to the client's `decode`. */
  readonly decode?: boolean | undefined
}

/** Options of an event wait. */
export interface EventWaitOptions {
  /** A sub-object the event must contain (`event_match` of the Python `QEMUMachine`). */
  readonly match?: unknown
  /** Default 60 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Decode the event's data with its generated Schema. Defaults to the client's `decode`. */
  readonly decode?: boolean | undefined
}

export type { QmpClientOptions } from "./internal/qmpOptions.js"

/**
 * Events from the moment of subscribing, in order: `take` the next one
 * (`Option.none()` once the session has ended and all were taken), or the
 * rest as a `stream` that ends with the session.
 */
export interface Subscription<A> {
  readonly take: Effect.Effect<Option.Option<A>>
  readonly stream: Stream.Stream<A>
}

/** A subscription to every event. */
export type EventSubscription = Subscription<Event>
/** A subscription to some events, typed; see `subscribeNamed`. */
export type TypedSubscription<K extends Qapi.EventName> = Subscription<Qapi.TypedEvent<K>>

/** Errors `executeRaw` can end in: an error reply is a value there, not a failure. */
export type RawCommandError = QMPTimeout | QMPDisconnected | QMPEncodeError

/** Errors a command can end in. */
export type CommandError = QMPCommandError | RawCommandError

/** Errors setting up a session: the greeting and negotiation, and the optional schema check. */
export type SessionError = QMPGreetingError | QMPSchemaDrift

/**
 * A file descriptor to pass to QEMU: an open descriptor of this process (it
 * stays open and yours; QEMU gets a copy), or a file the library opens for the
 * send and closes after (read-only unless `writable`).
 */
export type FdSource = number | { readonly path: string; readonly writable?: boolean | undefined }

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
  /** Runs a command: its `return` value, or `QMPCommandError`; typed for the generated QAPI schema (see `Qapi`). */
  readonly execute: Qapi.TypedExecute<ExecuteOptions, CommandError>
  /** Runs a command and returns the whole reply, error replies included (`qmp()` of the Python `QEMUMachine`). */
  readonly executeRaw: (
    command: string,
    args?: Arguments | undefined,
    options?: ExecuteOptions
  ) => Effect.Effect<Reply, RawCommandError>
  /** Runs a human monitor (HMP) command line and returns its output. */
  readonly hmp: (commandLine: string, options?: ExecuteOptions) => Effect.Effect<string, CommandError>
  /**
   * Subscribes to events now and runs the command, then waits for the first
   * event matching `events` that arrived after the subscription, so an event
   * QEMU sends before the command's reply cannot be missed. Typed like
   * `execute` and `eventWait`.
   */
  readonly executeAndWait: Qapi.TypedExecuteAndWait<ExecuteOptions, CommandError>
  /**
   * Runs a command with file descriptors attached to its bytes (SCM_RIGHTS),
   * for commands that take one from the monitor (`getfd`, `add-fd`), so
   * descriptor and command stay paired when other fibers pass descriptors at
   * the same time. Needs a unix-socket monitor and the native helper.
   */
  readonly executeWithFds: (
    command: string,
    args: Arguments | undefined,
    fds: ReadonlyArray<FdSource>,
    options?: ExecuteOptions
  ) => Effect.Effect<unknown, CommandError | FdPassingError>
  /** `send_fd_scm` of the Python `QEMUMachine`: one descriptor with a space byte, for the next `getfd`/`add-fd` (prefer those). */
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
  /** The events with these names, typed, from subscription on (decoded when `decode` is on; a mismatch ends the stream). */
  readonly eventsNamed: <K extends Qapi.EventName>(
    ...names: ReadonlyArray<K>
  ) => Stream.Stream<Qapi.TypedEvent<K>, QMPDecodeError>
  /** Subscribes now, to take events later: nothing that arrives after this is missed. */
  readonly subscribe: Effect.Effect<EventSubscription, never, Scope.Scope>
  /**
   * Subscribes now to the events with these names, typed (`data` narrowed by
   * `event`): a subscription made before a command cannot miss the events it
   * causes, whenever its stream is run.
   */
  readonly subscribeNamed: <K extends Qapi.EventName>(
    ...names: ReadonlyArray<K>
  ) => Effect.Effect<TypedSubscription<K>, never, Scope.Scope>
  /** `event_wait` of the Python `QEMUMachine`: the first cached match, else the first new one (60 s); typed. */
  readonly eventWait: Qapi.TypedEventWait<EventWaitOptions, QMPTimeout | QMPDisconnected>
  /** `events_wait` of the Python `QEMUMachine`: like `eventWait` for any of several filters; one timeout in all. */
  readonly eventsWait: (
    filters: ReadonlyArray<EventFilter>,
    options?: { readonly timeout?: Duration.DurationInput | undefined }
  ) => Effect.Effect<Event, QMPTimeout | QMPDisconnected>
  /** `get_qmp_event()` of the Python `QEMUMachine`: takes the oldest cached event, if any. */
  readonly getEvent: Effect.Effect<Option.Option<Event>>
  /** `get_qmp_events()` of the Python `QEMUMachine`: takes every cached event. */
  readonly getEvents: Effect.Effect<ReadonlyArray<Event>>
  /** Empties the event cache. */
  readonly clearEvents: Effect.Effect<void>
  /** Non-fatal protocol errors (garbage, unknown ids, malformed messages) as they happen. */
  readonly protocolErrors: Stream.Stream<QMPProtocolError>
  /** True until the session ends. */
  readonly isConnected: Effect.Effect<boolean>
  /** True once QEMU accepted a `quit` sent through this session, however it was sent. */
  readonly quitAccepted: Effect.Effect<boolean>
  /** Completes with the reason once the session ends. */
  readonly awaitDisconnect: Effect.Effect<QMPDisconnected>
  /** Ends the session: pending commands fail with `QMPDisconnected`, streams end. Idempotent. */
  readonly close: Effect.Effect<void>
}

/** The QMP session service. */
export class QmpClient extends Context.Tag("qemu-machine/QmpClient")<QmpClient, QmpClientService>() {}

const DEFAULT_TIMEOUT = Duration.seconds(30)

const toResult = (command: string) => (reply: Reply): Effect.Effect<unknown, QMPCommandError> =>
  isErrorReply(reply)
    ? Effect.fail(new QMPCommandError({ command, class: reply.error.class, desc: reply.error.desc }))
    : Effect.succeed(reply.return)

/**
 * Runs a QMP session over an open transport. The scope ends the session
 * and closes the transport.
 *
 * @internal
 */
export const fromTransport = (
  transport: Transport.ByteTransport,
  options: QmpClientOptions = {}
): Effect.Effect<QmpClientService, SessionError, Scope.Scope> =>
  Effect.flatMap(start(transport, options), (started) => Effect.as(started.ready(), started.client)).pipe(
    Tracing.withSpan("QmpClient.connect", { attributes: { ...options.spanAttributes, "qmp.transport": transport.label } })
  )

/**
 * `fromTransport` without the wait: the client, usable once `ready` (the
 * handshake within `greetingTimeout`, default the options', then the schema
 * check) succeeded. A launch builds the machine while QEMU starts.
 *
 * @internal
 */
export const start = (transport: Transport.ByteTransport, options: QmpClientOptions = {}) =>
  Effect.gen(function*() {
    const session = yield* QmpSession.make(transport, options)
    const events = session.events
    const decodeByDefault = options.decode === true

    const executeRaw = (command: string, args?: Arguments, executeOptions?: ExecuteOptions) =>
      session.send(command, args, executeOptions)
    const executeUnchecked = (command: string, args: Arguments | undefined, executeOptions?: ExecuteOptions) =>
      Effect.flatMap(session.send(command, args, executeOptions), toResult(command))
    const execute = (command: string, args?: Arguments, executeOptions?: ExecuteOptions) =>
      (executeOptions?.decode ?? decodeByDefault)
        ? Effect.zipRight(
          Qapi.checkArguments(command, args),
          Effect.flatMap(executeUnchecked(command, args, executeOptions), (result) => Qapi.decodeResult(command, result))
        )
        : executeUnchecked(command, args, executeOptions)

    const executeWithFds = (
      command: string,
      args: Arguments | undefined,
      sources: ReadonlyArray<FdSource>,
      executeOptions?: ExecuteOptions
    ) =>
      Effect.scoped(Effect.flatMap(
        Effect.forEach(sources, FdPassing.open),
        (fds) => Effect.flatMap(session.withFds(fds).send(command, args, executeOptions), toResult(command))
      ))

    const eventWait = (name: string, waitOptions?: EventWaitOptions) => {
      const wait = events.eventsWait([{ name, match: waitOptions?.match }], waitOptions?.timeout)
      return ((waitOptions?.decode ?? decodeByDefault) ? Effect.flatMap(wait, Qapi.decodeEvent) : wait).pipe(
        Tracing.withSpan("QMP eventWait", { attributes: { ...options.spanAttributes, "qmp.event": name } })
      )
    }

    const service: QmpClientService = {
      get greeting() {
        return session.greeting
      },
      get capabilities() {
        return session.capabilities
      },
      // One implementation behind both overloads: typed names differ only in their static types.
      execute: execute as QmpClientService["execute"],
      executeRaw,
      hmp: (commandLine, hmpOptions) =>
        Effect.map(executeUnchecked("human-monitor-command", { "command-line": commandLine }, hmpOptions), String),
      executeAndWait: ((
        command: string,
        args: Arguments | undefined,
        filters: string | ReadonlyArray<EventFilter>,
        executeOptions?: ExecuteOptions
      ) => {
        const wanted = typeof filters === "string" ? [{ name: filters }] : filters
        return Effect.suspend(() => {
          const waiter = events.addWaiter(wanted)
          return executeUnchecked(command, args, executeOptions).pipe(
            Effect.onError(() => Effect.sync(() => events.removeWaiter(waiter))),
            Effect.flatMap((result) =>
              Effect.map(events.awaitWaiter(waiter, executeOptions?.timeout), (event) => ({ result, event }))
            )
          )
        }).pipe(Tracing.withSpan("QMP executeAndWait", {
          attributes: { ...options.spanAttributes, "qmp.command": command, "qmp.event": wanted.map((f) => f.name).join(" | ") }
        }))
      }) as QmpClientService["executeAndWait"],
      executeWithFds,
      sendFdScm: (source) => Effect.scoped(Effect.flatMap(FdPassing.open(source), session.sendFd)),
      getfd: (fdname, source, fdOptions) => Effect.asVoid(executeWithFds("getfd", { fdname }, [source], fdOptions)),
      addFd: (source, fdOptions) => {
        const args = { "fdset-id": fdOptions?.fdsetId, opaque: fdOptions?.opaque }
        return Effect.map(
          executeWithFds("add-fd", Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined)), [source], fdOptions),
          (result) => result as AddFdInfo
        )
      },
      events: events.stream,
      eventsNamed: <K extends Qapi.EventName>(...names: ReadonlyArray<K>) => {
        const named = events.named(names)
        // Typed by name: the names were asked for; decoded (checked) when `decode` is on.
        return (decodeByDefault ? Stream.mapEffect(named, Qapi.decodeEvent) : named) as unknown as Stream.Stream<
          Qapi.TypedEvent<K>,
          QMPDecodeError
        >
      },
      subscribe: events.subscribe,
      subscribeNamed: (...names) =>
        Effect.map(events.subscribeNamed(names), (s) => s as unknown as TypedSubscription<(typeof names)[number]>),
      eventWait: eventWait as QmpClientService["eventWait"],
      eventsWait: (filters, waitOptions) =>
        events.eventsWait(filters, waitOptions?.timeout).pipe(
          Tracing.withSpan("QMP eventsWait", {
            attributes: { ...options.spanAttributes, "qmp.event": filters.map((f) => f.name).join(" | ") }
          })
        ),
      getEvent: events.getEvent,
      getEvents: events.getEvents,
      clearEvents: events.clearEvents,
      protocolErrors: session.protocolErrors,
      isConnected: session.isConnected,
      quitAccepted: Effect.sync(session.quitAccepted),
      awaitDisconnect: session.awaitDisconnect,
      close: session.close
    }
    const check = options.schemaCheck
    const ready = (greetingTimeout?: Duration.DurationInput): Effect.Effect<void, SessionError> =>
      check === undefined || check === "ignore"
        ? session.handshake(greetingTimeout)
        : Effect.zipRight(session.handshake(greetingTimeout), Qapi.checkSchema(service, check))
    return { client: service, ready }
  })

/** A QMP session over a connected duplex (e.g. the parent's end of a socket pair QEMU inherited). The scope closes it. */
export const make = (
  duplex: Duplex,
  options: QmpClientOptions & { readonly label?: string | undefined } = {}
): Effect.Effect<QmpClientService, SessionError, Scope.Scope> =>
  Effect.flatMap(Transport.fromDuplex(duplex, options.label ?? "socketpair"), (transport) => fromTransport(transport, options))

/** Where a QMP server listens: a unix socket path, or a TCP address. */
export type Address = { readonly path: string } | { readonly host: string; readonly port: number }

/** Options for sessions that connect or accept; `connectTimeout` (default 30 s) bounds the connect or accept. */
export type ConnectOptions = QmpClientOptions & { readonly connectTimeout?: Duration.DurationInput | undefined }

const label = Transport.addressLabel

/** Connects to a QMP server (QEMU's `-qmp unix:PATH,server=on` or `tcp:...`). */
export const connect = (
  address: Address,
  options: ConnectOptions = {}
): Effect.Effect<QmpClientService, SessionError | QMPConnectError, Scope.Scope> =>
  Transport.connect(address, label(address), options.connectTimeout ?? DEFAULT_TIMEOUT).pipe(
    Effect.mapError((e) => new QMPConnectError({ address: label(address), detail: e.detail, cause: e.error })),
    Effect.flatMap((transport) => fromTransport(transport, options))
  )

/**
 * Listens on `address` and runs the session on the first connection (the
 * Python `QEMUMachine`'s `server=True`, for a QEMU started with
 * `-chardev socket,path=...` without `server=on`). `connectTimeout` bounds
 * the accept. Whoever connects first gets it: a machine this library
 * launches checks that its peer is QEMU; this cannot.
 */
export const accept = (
  address: Address,
  options: ConnectOptions = {}
): Effect.Effect<QmpClientService, SessionError | QMPConnectError, Scope.Scope> =>
  Effect.gen(function*() {
    const fail = (e: Transport.ConnectFailed) =>
      new QMPConnectError({ address: label(address), detail: e.detail, cause: e.error })
    const listener = yield* Transport.listen(address).pipe(Effect.mapError(fail))
    const transport = yield* listener.accept(options.connectTimeout ?? DEFAULT_TIMEOUT).pipe(Effect.mapError(fail))
    return yield* fromTransport(transport, options)
  })

/** A `QmpClient` connected to `address` for the layer's lifetime. */
export const layer = (address: Address, options?: ConnectOptions): Layer.Layer<QmpClient, SessionError | QMPConnectError> =>
  Layer.scoped(QmpClient, connect(address, options))
