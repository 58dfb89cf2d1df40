/**
 * A fake QMP server for tests: real QMP framing over a real unix socket,
 * scriptable per command, able to emit events and to misbehave on request.
 *
 * ```ts
 * const TestLayer = FakeQmp.layer({
 *   commands: { "query-status": () => FakeQmp.reply({ status: "paused", running: false }) }
 * })
 * it.scoped("reads the status", () =>
 *   Effect.gen(function*() {
 *     const qmp = yield* QmpClient.QmpClient
 *     expect(yield* qmp.execute("query-status")).toMatchObject({ status: "paused" })
 *   }).pipe(Effect.provide(TestLayer)))
 * ```
 *
 * With `generate`, every command of QEMU's schema without a handler gets a
 * schema-valid answer drawn from its Schema's arbitrary, and `emitGenerated`
 * sends any schema event: answers QEMU could give, for property tests.
 * `FakeQmpVerify` checks a script's answers against a real QEMU.
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Arbitrary from "effect/Arbitrary"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import type { QMPConnectError } from "../Errors.js"
import { FrameDecoder } from "../internal/framing.js"
import { withNodeDefaults } from "../internal/platform.js"
import * as Transport from "../internal/transport.js"
import { commands as commandSchemas, Empty, events as eventSchemas } from "../generated/qapi.js"
import * as Qapi from "../Qapi.js"
import * as QmpClient from "../QmpClient.js"
import {
  type Arguments,
  type Command,
  decodeClientCommand,
  type Greeting
} from "../QmpProtocol.js"

/** What the fake does in answer to a command; `A` is the type of a `return` value. */
export type FakeResponse<A = unknown> =
  | { readonly _tag: "Return"; readonly value: A }
  | { readonly _tag: "Error"; readonly class: string; readonly desc: string }
  | { readonly _tag: "ReplyWithId"; readonly id: unknown; readonly value: unknown }
  | { readonly _tag: "Raw"; readonly data: string | Uint8Array }
  | { readonly _tag: "NoReply" }
  | { readonly _tag: "Disconnect" }

/**
 * Reply `{"return": value}`. Returned from the handler of a command of the
 * generated schema, `value` is checked against (any part of) that command's
 * result: `reply({ runing: false })` for `query-status` does not compile.
 */
export const reply = <A = unknown>(value?: NoInfer<A>): FakeResponse<A> =>
  ({ _tag: "Return", value: (value ?? {}) as A })
/**
 * Reply `{"return": value}` with a value of any shape, also one that breaks
 * the command's schema: for tests of what a client does with a wrong reply.
 */
export const replyUnchecked = (value: unknown): FakeResponse<never> => ({ _tag: "Return", value: value as never })
/** Reply `{"error": {"class": ..., "desc": ...}}`. */
export const error = (errorClass: string, desc: string): FakeResponse<never> => ({ _tag: "Error", class: errorClass, desc })
/** Reply with another id than the command's (or none, with `undefined`). */
export const replyWithId = (id: unknown, value: unknown = {}): FakeResponse<never> => ({ _tag: "ReplyWithId", id, value })
/** Send these bytes instead of a reply (garbage, truncated JSON, a huge message...). */
export const raw = (data: string | Uint8Array): FakeResponse<never> => ({ _tag: "Raw", data })
/** Never answer. */
export const noReply: FakeResponse<never> = { _tag: "NoReply" }
/** Close the connection instead of answering. */
export const disconnect: FakeResponse<never> = { _tag: "Disconnect" }

/** What a handler can do besides answering. */
export interface FakeCommandContext {
  /** The command as received, id included. */
  readonly command: Command
  /** Sends an event now (before the reply, as QEMU often does). */
  readonly emit: (event: string, data?: Arguments) => Effect.Effect<void>
  /** Sends raw bytes now. */
  readonly send: (data: string | Uint8Array) => Effect.Effect<void>
}

/** A handler's arguments: typed for a command of the generated schema. */
export type HandlerArgs<K extends string> = K extends Qapi.CommandName ? Qapi.CommandArgs<K> | undefined
  : Arguments | undefined
/** What a handler may return: any part of the command's result for a command of the generated schema. */
export type HandlerReply<K extends string> = K extends Qapi.CommandName ? Qapi.DeepPartial<Qapi.CommandResult<K>> : unknown

/** Answers one command, typed by its name (a method type, so typed handlers also fit where any name goes). */
export type CommandHandler<K extends string = string> = {
  handle(
    args: HandlerArgs<K>,
    context: FakeCommandContext
  ): FakeResponse<HandlerReply<K>> | Effect.Effect<FakeResponse<HandlerReply<K>>>
}["handle"]

/**
 * Handlers by command name, each typed by its own name: a command of the
 * generated schema gets typed arguments and a checked reply, any other name
 * is untyped. (`C` is inferred from the object's keys.)
 */
export type CommandHandlers<C> = { readonly [K in keyof C]: CommandHandler<K & string> }

/** How the fake behaves. */
export interface FakeQmpScript<C = {}> {
  /** The greeting to send; `"none"` sends nothing; a string is sent raw. Default: a QEMU 7.2 greeting. */
  readonly greeting?: Greeting | "none" | string | undefined
  /** Wait this long before the greeting. */
  readonly greetingDelay?: Duration.DurationInput | undefined
  /** Handlers by command name; they override the built-in ones. */
  readonly commands?: CommandHandlers<C> | undefined
  /** Enforce capabilities negotiation like QEMU does. Default true. */
  readonly requireNegotiation?: boolean | undefined
  /**
   * Answer every command of the generated schema that has no handler with a
   * schema-valid value drawn from the result Schema's arbitrary (the same
   * `seed` gives the same answers). Default false: such commands are
   * `CommandNotFound`, as before.
   */
  readonly generate?: boolean | { readonly seed?: number | undefined } | undefined
}

/** Control over a running fake server. */
export interface FakeQmpService {
  /** The unix socket path it listens on. */
  readonly path: string
  /** Every command received so far, across connections. */
  readonly received: Effect.Effect<ReadonlyArray<Command>>
  /** Commands as they arrive. */
  readonly commands: Stream.Stream<Command>
  /** Sends an event to the current connection. */
  readonly emit: (event: string, data?: Arguments) => Effect.Effect<void>
  /** Sends an event of the schema with schema-valid data drawn from its arbitrary; returns the data. */
  readonly emitGenerated: <K extends Qapi.EventName>(event: K, options?: { readonly seed?: number | undefined }) => Effect.Effect<unknown>
  /** Sends raw bytes to the current connection. */
  readonly sendRaw: (data: string | Uint8Array) => Effect.Effect<void>
  /** Closes the current connection. */
  readonly disconnect: Effect.Effect<void>
  /** Replaces (or adds) the handler of a command. */
  readonly setHandler: (command: string, handler: CommandHandler) => Effect.Effect<void>
  /** How many connections were accepted. */
  readonly connections: Effect.Effect<number>
}

/** The fake server's control service. */
export class FakeQmp extends Context.Tag("qemu-machine/testing/FakeQmp")<FakeQmp, FakeQmpService>() {}

/** The greeting QEMU 7.2 sends. */
export const defaultGreeting: Greeting = {
  QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: "Debian 1:7.2 (fake)" }, capabilities: ["oob"] }
}

const now = () => {
  const ms = Date.now()
  return { seconds: Math.floor(ms / 1000), microseconds: (ms % 1000) * 1000 }
}

const eventLine = (event: string, data?: Arguments) =>
  `${JSON.stringify(data === undefined ? { event, timestamp: now() } : { event, data, timestamp: now() })}\n`

/** One schema-valid value of `schema`, the same for the same seed. */
export const generated = <A>(schema: Schema.Schema<A>, seed: number): A =>
  FastCheck.sample(Arbitrary.make(schema), { seed, numRuns: 1 })[0]!

/** QEMU-like answers for the commands every test needs. */
export const builtinHandlers: Readonly<Record<string, CommandHandler>> = {
  "qmp_capabilities": () => reply({}),
  "query-status": () => reply({ status: "running", singlestep: false, running: true }),
  "query-version": () => reply({ qemu: defaultGreeting.QMP.version.qemu, package: defaultGreeting.QMP.version.package }),
  "query-name": () => reply({}),
  "human-monitor-command": () => reply(""),
  // Descriptors sent with these are dropped by Node's reader: the fake sees the command only.
  "getfd": () => reply({}),
  "closefd": () => reply({}),
  "stop": (_args, ctx) => Effect.as(ctx.emit("STOP"), reply({})),
  "cont": (_args, ctx) => Effect.as(ctx.emit("RESUME"), reply({})),
  "system_powerdown": (_args, ctx) => Effect.as(ctx.emit("POWERDOWN"), reply({})),
  "quit": (_args, ctx) =>
    Effect.zipRight(
      ctx.emit("SHUTDOWN", { guest: false, reason: "host-qmp-quit" }),
      ctx.send(`${JSON.stringify({ return: {}, id: ctx.command.id })}\n`)
    ).pipe(Effect.as(disconnect))
}

/**
 * Starts a fake QMP server on a unix socket in a private temporary directory.
 * It accepts any number of connections, one after the other.
 */
export const make = <C = {}>(
  script: FakeQmpScript<C> = {}
): Effect.Effect<FakeQmpService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ directory: NodeOs.tmpdir(), prefix: "fake-qmp-" }).pipe(Effect.orDie)
    const path = NodePath.join(dir, "qmp.sock")
    const listener = yield* Transport.listen({ path }).pipe(Effect.orDie)
    const handlers = new Map<string, CommandHandler>()
    for (const [name, handler] of Object.entries({ ...builtinHandlers, ...script.commands })) {
      handlers.set(name, handler as CommandHandler)
    }
    const received: Array<Command> = []
    const generateSeed = script.generate === undefined || script.generate === false
      ? undefined
      : script.generate === true ? 0 : script.generate.seed ?? 0
    let drawn = 0
    /** A handler for a schema command nobody scripted: a fresh schema-valid value each call. */
    const generatedHandler = (name: string): CommandHandler | undefined =>
      Qapi.isCommand(name) ? () => replyUnchecked(generated(commandSchemas[name].result as Schema.Schema<unknown>, generateSeed! + drawn++)) : undefined
    const commandHub = yield* Effect.acquireRelease(PubSub.unbounded<Command>(), PubSub.shutdown)
    let current: Transport.ByteTransport | undefined
    let connections = 0

    const send = (data: string | Uint8Array) =>
      Effect.suspend(() => current === undefined ? Effect.void : Effect.ignore(current.write(data)))

    const serve = (transport: Transport.ByteTransport) =>
      Effect.gen(function*() {
        current = transport
        connections++
        let negotiated = script.requireNegotiation === false
        const decoder = new FrameDecoder()
        const inbox = yield* Queue.unbounded<unknown>()
        const ctxFor = (command: Command): FakeCommandContext => ({
          command,
          emit: (event, data) => Effect.ignore(transport.write(eventLine(event, data))),
          send: (data) => Effect.ignore(transport.write(data))
        })
        const answer = (command: Command): Effect.Effect<void> =>
          Effect.gen(function*() {
            const name = "execute" in command ? command.execute : command["exec-oob"]
            const id = command.id
            const withId = (body: Record<string, unknown>) =>
              `${JSON.stringify(id === undefined ? body : { ...body, id })}\n`
            if (!negotiated && name !== "qmp_capabilities") {
              yield* Effect.ignore(transport.write(withId({
                error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" }
              })))
              return
            }
            const handler = handlers.get(name) ?? (generateSeed === undefined ? undefined : generatedHandler(name))
            if (handler === undefined) {
              yield* Effect.ignore(transport.write(withId({
                error: { class: "CommandNotFound", desc: `The command ${name} has not been found` }
              })))
              return
            }
            const result = handler(command.arguments, ctxFor(command))
            const response = Effect.isEffect(result) ? yield* result : result
            if (name === "qmp_capabilities" && response._tag === "Return") negotiated = true
            switch (response._tag) {
              case "Return":
                return yield* Effect.ignore(transport.write(withId({ return: response.value })))
              case "Error":
                return yield* Effect.ignore(
                  transport.write(withId({ error: { class: response.class, desc: response.desc } }))
                )
              case "ReplyWithId": {
                const body = response.id === undefined
                  ? { return: response.value }
                  : { return: response.value, id: response.id }
                return yield* Effect.ignore(transport.write(`${JSON.stringify(body)}\n`))
              }
              case "Raw":
                return yield* Effect.ignore(transport.write(response.data))
              case "NoReply":
                return
              case "Disconnect":
                return yield* transport.close
            }
          })

        if (script.greetingDelay !== undefined) yield* Effect.sleep(script.greetingDelay)
        const greeting = script.greeting ?? defaultGreeting
        if (greeting !== "none") {
          yield* Effect.ignore(transport.write(typeof greeting === "string" ? greeting : `${JSON.stringify(greeting)}\n`))
        }
        const worker = yield* Queue.take(inbox).pipe(
          Effect.flatMap((json) => {
            const decoded = decodeClientCommand(json)
            if (decoded._tag === "Left") {
              return Effect.ignore(transport.write(`${JSON.stringify({ error: { class: "GenericError", desc: "QMP input member 'execute' is missing" } })}\n`))
            }
            received.push(decoded.right)
            return Effect.zipRight(PubSub.publish(commandHub, decoded.right), answer(decoded.right))
          }),
          Effect.forever,
          Effect.fork
        )
        yield* transport.run((chunk) => {
          decoder.push(chunk, {
            onMessage: (json) => inbox.unsafeOffer(json),
            onError: () =>
              transport.unsafeWrite(`${JSON.stringify({ error: { class: "GenericError", desc: "JSON parse error" } })}\n`)
          })
        })
        yield* Fiber.interrupt(worker)
        if (current === transport) current = undefined
      }).pipe(Effect.scoped)

    yield* listener.accept(Duration.infinity).pipe(
      Effect.flatMap(serve),
      Effect.scoped,
      Effect.forever,
      Effect.forkScoped
    )

    return {
      path,
      received: Effect.sync(() => received.slice()),
      commands: Stream.fromPubSub(commandHub),
      emit: (event, data) => send(eventLine(event, data)),
      emitGenerated: (event, options) =>
        Effect.suspend(() => {
          const schema = eventSchemas[event] as Schema.Schema<unknown>
          const data = generated(schema, options?.seed ?? drawn++)
          // Events without data (STOP, RESUME, ...) have no `data` member on the wire.
          return Effect.as(send(eventLine(event, schema === Empty ? undefined : data as Arguments)), data)
        }),
      sendRaw: send,
      disconnect: Effect.suspend(() => current === undefined ? Effect.void : current.close),
      setHandler: (command, handler) => Effect.sync(() => void handlers.set(command, handler)),
      connections: Effect.sync(() => connections)
    } satisfies FakeQmpService
  }).pipe(withNodeDefaults)

/** The fake server alone, for tests that connect to it themselves. */
export const layerServer = <C = {}>(script?: FakeQmpScript<C>): Layer.Layer<FakeQmp> => Layer.scoped(FakeQmp, make(script))

/**
 * A fake server and a `QmpClient` connected to it: inject this where the code
 * under test needs a `QmpClient`, and drive the server through `FakeQmp`.
 */
export const layer = <C = {}>(
  script?: FakeQmpScript<C>,
  clientOptions?: QmpClient.ConnectOptions
): Layer.Layer<FakeQmp | QmpClient.QmpClient, QmpClient.SessionError | QMPConnectError> =>
  Layer.flatMap(
    layerServer(script),
    (context) =>
      Layer.merge(
        Layer.succeedContext(context),
        Layer.scoped(QmpClient.QmpClient, QmpClient.connect({ path: Context.get(context, FakeQmp).path }, clientOptions))
      )
  )
