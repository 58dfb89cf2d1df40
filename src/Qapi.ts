/**
 * Typed QMP, generated from QEMU's QAPI schema.
 *
 * `npm run gen:qapi` turns QEMU's own introspection (`query-qmp-schema`,
 * saved in `qapi/qmp-schema.json`) into `src/generated/qapi.ts`: a type and
 * an `effect/Schema` for every command's arguments and result and every
 * event's data. With them, `execute("query-status")` is typed as
 * `Effect<QueryStatusResult, ...>`, its arguments are checked by the
 * compiler, and `eventWait("SHUTDOWN")` gives `data.reason` a type. Names
 * outside the schema still work, untyped, and `executeRaw` stays untyped.
 *
 * Types are a promise, not a check: by default nothing is decoded at run time
 * (for speed). Ask for checking per call or per client with `decode: true`;
 * then arguments, results and event data are decoded with the generated
 * Schemas and a mismatch is a `QMPDecodeError` naming the field.
 *
 * The types describe one QEMU build. `checkDrift` (or `schemaCheck` on the
 * client or machine) compares the connected QEMU's schema with it: a hash
 * first, then the commands and events added, removed and changed.
 *
 * @module
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { QMPDecodeError, QMPSchemaDrift } from "./Errors.js"
import * as Generated from "./generated/qapi.js"
import * as Introspection from "./internal/qapiIntrospection.js"
import { type Arguments, type Event, type Greeting, isErrorReply, type Reply } from "./QmpProtocol.js"
import * as Tracing from "./internal/tracing.js"

/** The generated types and Schemas, e.g. `Qapi.Types.QueryStatusResult`. */
export * as Types from "./generated/qapi.js"

/** The QEMU the types were generated from. */
export const generatedFrom: typeof Generated.source = Generated.source

/** A command of the generated schema. */
export type CommandName = keyof Generated.Commands
/** Its arguments (an object type; `{}` when it takes none). */
export type CommandArgs<K extends CommandName> = Generated.Commands[K]["args"]
/** Its `return` value. */
export type CommandResult<K extends CommandName> = Generated.Commands[K]["result"]
/** An event of the generated schema. */
export type EventName = keyof Generated.Events
/** Its `data`. */
export type EventData<K extends EventName> = Generated.Events[K]

/**
 * An event whose `data` has its generated type (absent for events that carry
 * none). Distributive: `TypedEvent<"STOP" | "RESET">` is a union that
 * narrows `data` by `event`.
 */
export type TypedEvent<K extends EventName> = K extends EventName ?
    & Omit<Event, "event" | "data">
    & { readonly event: K }
    & ({} extends EventData<K> ? { readonly data?: EventData<K> } : { readonly data: EventData<K> })
  : never

/**
 * A pattern for `event_match` (of the Python `QEMUMachine`) over a value of
 * type `T`: any part of it, `null` (or absent) meaning "anything".
 */
export type Match<T> = T extends ReadonlyArray<infer U> ? ReadonlyArray<Match<U>> | null
  : T extends object ? { readonly [P in keyof T]?: Match<T[P]> } | null
  : T | null

/** Any part of a command's result, for fakes that answer only what a test needs. */
export type DeepPartial<T> = T extends ReadonlyArray<infer U> ? ReadonlyArray<DeepPartial<U>>
  : T extends object ? { readonly [P in keyof T]?: DeepPartial<T[P]> }
  : T

/** What a command's arguments may be: its type, or no keys at all when it takes none. */
export type ExecuteArgs<K extends CommandName> = [keyof CommandArgs<K>] extends [never]
  ? { readonly [key: string]: never }
  : CommandArgs<K>

/** The parameters after the command's name: arguments, required when the command has required ones, then options. */
export type ExecuteParams<K extends CommandName, Options> = {} extends CommandArgs<K>
  ? [args?: ExecuteArgs<K> | undefined, options?: Options]
  : [args: ExecuteArgs<K>, options?: Options]

/** `S`, unless it names a generated command (those take the typed overload). */
export type NotACommand<S extends string> = S extends CommandName ? never : S
/** `S`, unless it names a generated event. */
export type NotAnEvent<S extends string> = S extends EventName ? never : S

/**
 * `execute`, typed: a command of the generated schema gets typed arguments and
 * result; any other name is untyped. `E` is the caller's error channel;
 * `QMPDecodeError` only happens when decoding is on.
 */
export interface TypedExecute<Options, E> {
  <K extends CommandName>(
    command: K,
    ...rest: ExecuteParams<K, Options>
  ): Effect.Effect<CommandResult<K>, E | QMPDecodeError>
  <S extends string>(
    command: S & NotACommand<S>,
    args?: Arguments | undefined,
    options?: Options
  ): Effect.Effect<unknown, E | QMPDecodeError>
}

/**
 * `eventWait`, typed: an event of the generated schema comes with typed data,
 * and `match` is checked against it; any other name is untyped.
 */
export interface TypedEventWait<Options extends { readonly match?: unknown }, E> {
  <K extends EventName>(
    name: K,
    options?: Omit<Options, "match"> & { readonly match?: Match<TypedEvent<K>> }
  ): Effect.Effect<TypedEvent<K>, E | QMPDecodeError>
  <S extends string>(name: S & NotAnEvent<S>, options?: Options): Effect.Effect<Event, E | QMPDecodeError>
}

/** The arguments of `executeAndWait`'s command: optional exactly when the command has no required ones. */
export type WaitArgs<K extends CommandName> = {} extends CommandArgs<K> ? ExecuteArgs<K> | undefined : ExecuteArgs<K>

/** The events `executeAndWait` waits for: a name, or filters with typed patterns. */
export type EventFilters<K extends EventName> =
  | K
  | ReadonlyArray<{ readonly name: K; readonly match?: Match<TypedEvent<K>> | undefined }>

/**
 * `executeAndWait`, typed like `execute` and `eventWait` together: a command
 * and events of the generated schema give a typed result and a typed event.
 */
export interface TypedExecuteAndWait<Options, E> {
  <K extends CommandName, V extends EventName>(
    command: K,
    args: WaitArgs<K>,
    events: EventFilters<V>,
    options?: Options
  ): Effect.Effect<{ readonly result: CommandResult<K>; readonly event: TypedEvent<V> }, E>
  <S extends string>(
    command: S & NotACommand<S>,
    args: Arguments | undefined,
    events: string | ReadonlyArray<{ readonly name: string; readonly match?: unknown }>,
    options?: Options
  ): Effect.Effect<{ readonly result: unknown; readonly event: Event }, E>
}

/** Is this a command of the generated schema? */
export const isCommand = (name: string): name is CommandName => Object.hasOwn(Generated.commands, name)
/** Is this an event of the generated schema? */
export const isEvent = (name: string): name is EventName => Object.hasOwn(Generated.events, name)

type Decoder = (input: unknown) => Either.Either<unknown, ParseResult.ParseError>
type AnySchema = Schema.Schema.AnyNoContext
const decoders = new Map<AnySchema, Decoder>()
const argumentCheckers = new Map<AnySchema, Decoder>()

const cached = (cache: Map<AnySchema, Decoder>, schema: AnySchema, excess: "preserve" | "error") => {
  let decoder = cache.get(schema)
  if (decoder === undefined) {
    decoder = Schema.decodeUnknownEither(schema, { onExcessProperty: excess, errors: "first" })
    cache.set(schema, decoder)
  }
  return decoder
}

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((key, i) => typeof key === "number" ? `[${key}]` : i === 0 ? String(key) : `.${String(key)}`).join("")

const decodeWith = (
  decoder: Decoder,
  input: unknown,
  subject: QMPDecodeError["subject"],
  name: string
): Effect.Effect<unknown, QMPDecodeError> => {
  const result = decoder(input)
  if (Either.isRight(result)) return Effect.succeed(result.right)
  const issue = ParseResult.ArrayFormatter.formatErrorSync(result.left)[0]
  return Effect.fail(
    new QMPDecodeError({
      subject,
      name,
      path: issue === undefined ? "" : formatPath(issue.path),
      detail: issue?.message ?? result.left.message
    })
  )
}

/**
 * Decodes a command's `return` value with its generated Schema. Unknown
 * fields are kept (a newer QEMU may add some); a command outside the schema
 * passes through unchanged.
 */
export const decodeResult = (command: string, value: unknown): Effect.Effect<unknown, QMPDecodeError> =>
  isCommand(command)
    ? decodeWith(cached(decoders, Generated.commands[command].result, "preserve"), value, "result", command)
    : Effect.succeed(value)

/** An empty struct decodes any object (Effect treats `{}` as "not nullish"): such commands are checked by hand. */
const takesNoArguments = (schema: AnySchema): boolean => {
  const ast = schema.ast._tag === "Suspend" ? schema.ast.f() : schema.ast
  return SchemaAST.isTypeLiteral(ast) && ast.propertySignatures.length === 0 && ast.indexSignatures.length === 0
}

/** Checks a command's arguments against its generated Schema (unknown keys are errors, as in QEMU). */
export const checkArguments = (command: string, args: unknown): Effect.Effect<void, QMPDecodeError> => {
  if (!isCommand(command)) return Effect.void
  const schema = Generated.commands[command].args
  if (takesNoArguments(schema) && typeof args === "object" && args !== null) {
    const [first] = Object.keys(args)
    if (first !== undefined) {
      return Effect.fail(
        new QMPDecodeError({ subject: "arguments", name: command, path: first, detail: `${command} takes no arguments` })
      )
    }
  }
  return Effect.asVoid(decodeWith(cached(argumentCheckers, schema, "error"), args ?? {}, "arguments", command))
}

/** Decodes an event's `data` with its generated Schema; events outside the schema pass through. */
export const decodeEvent = (event: Event): Effect.Effect<Event, QMPDecodeError> =>
  isEvent(event.event)
    ? Effect.as(
      decodeWith(cached(decoders, Generated.events[event.event], "preserve"), event.data ?? {}, "event", event.event),
      event
    )
    : Effect.succeed(event)

/** What changed between two schemas, by command or event name. */
export interface SignatureDiff {
  readonly added: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
  readonly changed: ReadonlyArray<string>
}

/** How to react when the live QEMU's schema differs from the generated one. */
export type SchemaCheck = "ignore" | "log" | "fail"

/** What changed between the generated schema and a live one. */
export interface DriftReport {
  /** Same build: the schema is byte-for-byte the generated one (masked names included). */
  readonly sameBuild: boolean
  /** Every command and event has the same shape (names of types aside). */
  readonly identical: boolean
  readonly generated: { readonly version: string; readonly rawHash: string; readonly structuralHash: string }
  readonly live: { readonly rawHash: string; readonly structuralHash: string }
  readonly commands: SignatureDiff
  readonly events: SignatureDiff
}

const noChange: SignatureDiff = { added: [], removed: [], changed: [] }

/**
 * Compares a `query-qmp-schema` reply with the generated schema: the raw hash
 * first (same build: done), else a structural signature per command and
 * event, which ignores QEMU's masked type names and member order.
 */
export const driftReport = (liveSchema: unknown): Effect.Effect<DriftReport, QMPDecodeError> =>
  Effect.gen(function*() {
    const generated = {
      version: Generated.source.version,
      rawHash: Generated.rawHash,
      structuralHash: Generated.structuralHash
    }
    const rawHash = Introspection.rawHash(liveSchema)
    if (rawHash === Generated.rawHash) {
      return {
        sameBuild: true,
        identical: true,
        generated,
        live: { rawHash, structuralHash: Generated.structuralHash },
        commands: noChange,
        events: noChange
      }
    }
    const schema = (yield* decodeWith(
      cached(decoders, Introspection.QmpSchema, "preserve"),
      liveSchema,
      "result",
      "query-qmp-schema"
    )) as Introspection.QmpSchema
    const live = Introspection.signatures(schema)
    const structuralHash = Introspection.structuralHash(live)
    return {
      sameBuild: false,
      identical: structuralHash === Generated.structuralHash,
      generated,
      live: { rawHash, structuralHash },
      commands: Introspection.diff(Generated.signatures.commands, live.commands),
      events: Introspection.diff(Generated.signatures.events, live.events)
    }
  })

/** What the drift check needs of a QMP session (a `QmpClientService` has it). */
export interface SchemaSource<E> {
  readonly greeting: Greeting
  readonly executeRaw: (command: "query-qmp-schema") => Effect.Effect<Reply, E>
}

/** Runs `query-qmp-schema` on a session and compares it with the generated schema. */
export const checkDrift = <E>(client: SchemaSource<E>): Effect.Effect<DriftReport, E | QMPDecodeError> =>
  // Raw, whatever the client's `decode`: decoding would reorder the reply's keys and change the raw hash.
  Effect.flatMap(client.executeRaw("query-qmp-schema"), (reply) =>
    isErrorReply(reply)
      ? Effect.fail(
        new QMPDecodeError({ subject: "result", name: "query-qmp-schema", path: "", detail: reply.error.desc })
      )
      : driftReport(reply.return))

/**
 * The drift check at connect: compares the server's schema with the
 * generated one and logs a warning (`"log"`) or fails (`"fail"`) when they
 * differ, or when the schema cannot be read.
 */
export const checkSchema = <E extends { readonly message: string }>(
  client: SchemaSource<E>,
  mode: "log" | "fail"
): Effect.Effect<void, QMPSchemaDrift> =>
  Effect.gen(function*() {
    const version = client.greeting.QMP.version.qemu
    const live = `${version.major}.${version.minor}.${version.micro}`
    const report = yield* Effect.either(checkDrift(client))
    const summary = report._tag === "Left"
      ? `could not read the schema: ${report.left.message}`
      : report.right.identical
      ? undefined
      : formatDrift(report.right)
    if (summary === undefined) return yield* Effect.logDebug(`QAPI schema matches the generated one (QEMU ${live})`)
    const drift = new QMPSchemaDrift({ generatedFrom: generatedFrom.version, live, summary })
    if (mode === "fail") return yield* drift
    yield* Effect.logWarning(drift.message)
  }).pipe(Tracing.withSpan("Qapi.checkSchema"))

/** One line: what was added, removed and changed. */
export const formatDrift = (report: DriftReport): string => {
  if (report.identical) return report.sameBuild ? "same schema" : "same shapes (another build)"
  const part = (label: string, diff: SignatureDiff) =>
    (["added", "removed", "changed"] as const)
      .filter((kind) => diff[kind].length > 0)
      .map((kind) => `${label} ${kind}: ${diff[kind].join(", ")}`)
  const parts = [...part("commands", report.commands), ...part("events", report.events)]
  return parts.length > 0 ? parts.join("; ") : "type shapes differ"
}
