/**
 * The QEMU guest agent (qemu-ga), typed: run programs in the guest, read and
 * write its files, ask it about itself, shut it down, all without a network
 * or a login.
 *
 * ```ts
 * const vm = yield* Machine.launch({ ...config, guestAgent: {} })
 * const agent = yield* vm.guestAgent
 * yield* agent.sync()                                   // waits for qemu-ga to answer
 * const { exitCode, stdout } = yield* agent.exec("/bin/uname", ["-r"])
 * yield* agent.writeFile("/tmp/hello", "hello\n")
 * const info = yield* agent.execute("guest-get-osinfo") // typed from QEMU's qga schema
 * ```
 *
 * Requests go one at a time (the protocol has no interleaving). The first
 * request, and the first after a timeout or garbage, synchronises first
 * (`guest-sync-delimited`), so an agent that starts late, restarts, or was
 * left with half a request is recovered without the caller's help.
 *
 * @module
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { GuestAgentError } from "./Errors.js"
import { commands as schemaCommands, type GuestAgentInfo, type GuestOSInfo, type QgaCommands } from "./generated/qga.js"
import * as QgaSession from "./internal/qgaSession.js"
import * as Transport from "./internal/transport.js"
import * as Tracing from "./internal/tracing.js"

export type { GuestAgentInfo, GuestOSInfo, QgaCommands } from "./generated/qga.js"

/** A request's options. */
export interface RequestOptions {
  /** Default: the agent's `timeout`. */
  readonly timeout?: Duration.DurationInput | undefined
}

/** What `exec` returns: how the process ended and what it wrote. */
export interface ExecResult {
  /** The exit code, or `null` when a signal ended it. */
  readonly exitCode: number | null
  readonly signal: number | null
  readonly stdout: Uint8Array
  readonly stderr: Uint8Array
  /** True when the agent kept only the first part of an output (qemu-ga keeps 16 MiB). */
  readonly truncated: boolean
}

/** What `checkCommands` found. */
export interface CommandCheck {
  /** The agent's version. */
  readonly version: string
  /** Commands the agent has and the generated types do not (reach them with `executeRaw`). */
  readonly unknownToSchema: ReadonlyArray<string>
  /** Commands of the generated types the agent lacks, or has disabled (`qemu-ga -b`). */
  readonly unavailable: ReadonlyArray<string>
}

/** Options of `exec`. */
export interface ExecOptions extends RequestOptions {
  /** Bytes (or text, as UTF-8) for its standard input. */
  readonly input?: Uint8Array | string | undefined
  /** `NAME=value` entries for its environment (the agent's own is not inherited). */
  readonly env?: ReadonlyArray<string> | undefined
  /** Capture stdout and stderr. Default true. */
  readonly captureOutput?: boolean | undefined
}

/** A guest agent. */
export interface GuestAgentService {
  /** Any command of the agent's schema, its arguments and result typed. */
  readonly execute: <C extends keyof QgaCommands>(
    command: C,
    ...args: {} extends QgaCommands[C]["args"] ? [args?: QgaCommands[C]["args"], options?: RequestOptions]
      : [args: QgaCommands[C]["args"], options?: RequestOptions]
  ) => Effect.Effect<QgaCommands[C]["result"], GuestAgentError>
  /** A command by name, unchecked (one a newer agent has). */
  readonly executeRaw: (
    command: string,
    args?: Record<string, unknown>,
    options?: RequestOptions
  ) => Effect.Effect<unknown, GuestAgentError>
  /** Synchronises now: succeeds once the agent answers (it may still be starting). */
  readonly sync: (options?: RequestOptions) => Effect.Effect<void, GuestAgentError>
  /** The agent's version and its commands. */
  readonly info: Effect.Effect<GuestAgentInfo, GuestAgentError>
  /** `guest-ping`: succeeds when the agent answers. */
  readonly ping: (options?: RequestOptions) => Effect.Effect<void, GuestAgentError>
  /** The guest's OS (`guest-get-osinfo`). */
  readonly osInfo: Effect.Effect<GuestOSInfo, GuestAgentError>
  /**
   * Compares the agent's commands (`guest-info`) with the schema the types
   * were generated from: what this agent has that the types do not know, and
   * what the types know that it lacks or has disabled (`execute` of those fails).
   */
  readonly checkCommands: Effect.Effect<CommandCheck, GuestAgentError>
  /**
   * Runs a program (a path, no shell) with `args` and waits for it to end
   * (`timeout` bounds the whole run). A non-zero exit is a result, not an error.
   */
  readonly exec: (
    path: string,
    args?: ReadonlyArray<string>,
    options?: ExecOptions
  ) => Effect.Effect<ExecResult, GuestAgentError>
  /** Reads a whole file. */
  readonly readFile: (path: string, options?: RequestOptions) => Effect.Effect<Uint8Array, GuestAgentError>
  /** Creates or replaces a file with `data` (text as UTF-8). */
  readonly writeFile: (
    path: string,
    data: Uint8Array | string,
    options?: RequestOptions
  ) => Effect.Effect<void, GuestAgentError>
  /**
   * Asks the guest to power down (`guest-shutdown`; or `halt`, `reboot`).
   * The agent does not answer: the machine's `SHUTDOWN` event, or its exit,
   * is the sign it happened.
   */
  readonly shutdown: (mode?: "powerdown" | "halt" | "reboot") => Effect.Effect<void, GuestAgentError>
  /** True until the channel closes. */
  readonly isOpen: Effect.Effect<boolean>
}

/** The guest agent service. */
export class GuestAgent extends Context.Tag("qemu-machine/GuestAgent")<GuestAgent, GuestAgentService>() {}

/** Options of an agent session. */
export interface GuestAgentOptions {
  /** Default timeout of each request, a first sync included. Default 60 s (a guest may still be booting). */
  readonly timeout?: Duration.DurationInput | undefined
  /** How long a sync waits for one answer before it asks again. Default 500 ms. */
  readonly syncInterval?: Duration.DurationInput | undefined
}

/** The size of each `guest-file-read`/`guest-file-write`. */
const FILE_CHUNK = 1024 * 1024
/** Commands that do not answer on success. */
const SILENT = new Set(["guest-shutdown", "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid"])

/**
 * An agent over a byte channel (the launch's, or a connected socket). The
 * scope ends it.
 *
 * @internal
 */
export const fromTransport = (
  transport: Transport.ByteTransport,
  options: GuestAgentOptions = {}
): Effect.Effect<GuestAgentService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const session = yield* QgaSession.make(transport, { syncInterval: options.syncInterval })
    const defaultTimeout = Duration.decode(options.timeout ?? Duration.seconds(60))
    const timeoutOf = (requestOptions?: RequestOptions) =>
      requestOptions?.timeout === undefined ? defaultTimeout : Duration.decode(requestOptions.timeout)

    const executeRaw = (command: string, args?: Record<string, unknown>, requestOptions?: RequestOptions) =>
      session.request(command, args, { timeout: timeoutOf(requestOptions), answers: !SILENT.has(command) })

    const execute = ((command: string, args?: Record<string, unknown>, requestOptions?: RequestOptions) =>
      executeRaw(command, args, requestOptions)) as GuestAgentService["execute"]

    const exec: GuestAgentService["exec"] = (path, args = [], execOptions = {}) =>
      Effect.gen(function*() {
        const input = execOptions.input === undefined ? undefined : Buffer.from(execOptions.input).toString("base64")
        const { pid } = yield* execute("guest-exec", {
          path,
          arg: args,
          ...(execOptions.env === undefined ? {} : { env: execOptions.env }),
          ...(input === undefined ? {} : { "input-data": input }),
          "capture-output": execOptions.captureOutput !== false
        })
        // Short programs end within milliseconds: poll fast at first, then back off.
        let status = yield* execute("guest-exec-status", { pid })
        for (let delay = 2; !status.exited; delay = Math.min(200, delay * 2)) {
          yield* Effect.sleep(Duration.millis(delay))
          status = yield* execute("guest-exec-status", { pid })
        }
        return {
          exitCode: status.exitcode ?? null,
          signal: status.signal ?? null,
          stdout: Buffer.from(status["out-data"] ?? "", "base64"),
          stderr: Buffer.from(status["err-data"] ?? "", "base64"),
          truncated: status["out-truncated"] === true || status["err-truncated"] === true
        } satisfies ExecResult
      }).pipe(
        Effect.timeoutFail({
          duration: timeoutOf(execOptions),
          onTimeout: () =>
            new GuestAgentError({
              reason: "Timeout",
              command: "guest-exec",
              detail: `${path} did not end within ${Duration.format(timeoutOf(execOptions))} (it may still run)`
            })
        }),
        Tracing.withSpan("GuestAgent.exec", { attributes: { "qga.path": path } })
      )

    /** Opens a guest file, and closes it whatever happens to `use`. */
    const withFile = <A>(path: string, mode: string, use: (handle: number) => Effect.Effect<A, GuestAgentError>) =>
      Effect.acquireUseRelease(
        execute("guest-file-open", { path, mode }),
        use,
        (handle) => execute("guest-file-close", { handle }).pipe(Effect.ignore)
      )

    const readFile: GuestAgentService["readFile"] = (path, requestOptions) =>
      withFile(path, "r", (handle) =>
        Effect.gen(function*() {
          const chunks: Array<Uint8Array> = []
          while (true) {
            const chunk = yield* execute("guest-file-read", { handle, count: FILE_CHUNK }, requestOptions)
            chunks.push(Buffer.from(chunk["buf-b64"], "base64"))
            if (chunk.eof || chunk.count === 0) break
          }
          return new Uint8Array(Buffer.concat(chunks))
        })).pipe(Tracing.withSpan("GuestAgent.readFile", { attributes: { "qga.path": path } }))

    const writeFile: GuestAgentService["writeFile"] = (path, data, requestOptions) =>
      withFile(path, "w", (handle) =>
        Effect.gen(function*() {
          const bytes = Buffer.from(data)
          for (let offset = 0; offset < bytes.length; offset += FILE_CHUNK) {
            const part = bytes.subarray(offset, offset + FILE_CHUNK)
            const written = yield* execute("guest-file-write", { handle, "buf-b64": part.toString("base64") }, requestOptions)
            if (written.count !== part.length) {
              return yield* new GuestAgentError({
                reason: "Command",
                command: "guest-file-write",
                detail: `${path}: wrote ${written.count} of ${part.length} bytes`
              })
            }
          }
          yield* execute("guest-file-flush", { handle }, requestOptions)
        })).pipe(Tracing.withSpan("GuestAgent.writeFile", { attributes: { "qga.path": path } }))

    const service: GuestAgentService = {
      execute,
      executeRaw,
      sync: (requestOptions) => session.sync(timeoutOf(requestOptions)),
      info: execute("guest-info"),
      ping: (requestOptions) => Effect.asVoid(execute("guest-ping", {}, requestOptions)),
      osInfo: execute("guest-get-osinfo"),
      checkCommands: Effect.map(execute("guest-info"), (info) => {
        const enabled = new Set(info.supported_commands.filter((c) => c.enabled).map((c) => c.name))
        const known = new Set<string>(schemaCommands.map((c) => c.name))
        return {
          version: info.version,
          unknownToSchema: info.supported_commands.map((c) => c.name).filter((name) => !known.has(name)),
          unavailable: [...known].filter((name) => !enabled.has(name))
        }
      }),
      exec,
      readFile,
      writeFile,
      shutdown: (mode = "powerdown") => execute("guest-shutdown", { mode }),
      isOpen: session.isOpen
    }
    return service
  })

/** Options of `connect`. */
export interface ConnectOptions extends GuestAgentOptions {
  /** Default 10 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/**
 * An agent reached through a unix socket QEMU listens on
 * (`-chardev socket,id=qga0,path=PATH,server=on,wait=off`), for the scope.
 */
export const connect = (
  path: string,
  options: ConnectOptions = {}
): Effect.Effect<GuestAgentService, GuestAgentError, Scope.Scope> =>
  Transport.connect({ path }, `unix:${path}`, options.connectTimeout ?? Duration.seconds(10)).pipe(
    Effect.mapError((e) => new GuestAgentError({ reason: "Disconnected", command: "connect", detail: `${path}: ${e.detail}` })),
    Effect.flatMap((transport) => fromTransport(transport, options))
  )

/** A `GuestAgent` connected to `path` for the layer's lifetime. */
export const layer = (path: string, options?: ConnectOptions): Layer.Layer<GuestAgent, GuestAgentError> =>
  Layer.scoped(GuestAgent, connect(path, options))
