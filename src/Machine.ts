/**
 * A QEMU virtual machine as a scoped resource: the Effect counterpart of
 * QEMU's Python `QEMUMachine`.
 *
 * ```ts
 * Effect.scoped(Effect.gen(function*() {
 *   const vm = yield* Machine.launch({ machineType: "none" })
 *   const status = yield* vm.execute("query-status")
 * })) // QEMU is shut down (quit, then SIGKILL if needed) and its temp dir removed here
 * ```
 *
 * See `docs/lifecycle.md` for the state machine and which finalizer does what.
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ConsoleSocket from "./ConsoleSocket.js"
import {
  AbnormalShutdown,
  type FdPassingError,
  MachineStateError,
  type QMPDecodeError,
  type QMPDisconnected,
  QMPSchemaDrift,
  type QMPTimeout,
  SocketPathTooLong,
  VMLaunchFailure
} from "./Errors.js"
import * as FdPassing from "./internal/fdPassing.js"
import * as Channels from "./internal/channels.js"
import * as Files from "./internal/files.js"
import { formatCommand } from "./internal/redact.js"
import { buildCommand, DEFAULT_BINARY, FIRST_EXTRA_FD, type MachineConfig } from "./MachineConfig.js"
import * as QemuProcess from "./QemuProcess.js"
import type * as Qapi from "./Qapi.js"
import * as QmpClient from "./QmpClient.js"
import { type Arguments, convertKeys, type Event, type EventFilter, type Reply } from "./QmpProtocol.js"
import * as TempFiles from "./TempFiles.js"

/** Options of `shutdown`. */
export interface ShutdownOptions {
  /** Skip the graceful `quit`: SIGKILL at once, without the warning. Default false. */
  readonly hard?: boolean | undefined
  /** How long the graceful path may take before SIGKILL. Default 30 s. */
  readonly timeout?: Duration.DurationInput | undefined
}

/** Options of a command run through the machine. */
export interface MachineExecuteOptions extends QmpClient.ExecuteOptions {
  /** Turn `snake_case` argument names into `kebab-case` (the seed's `conv_keys`). Default false. */
  readonly convertKeys?: boolean | undefined
}

/** Errors a QMP call through the machine can end in. */
export type MachineCommandError = QmpClient.CommandError | MachineStateError

/** Where the machine is in its life. */
export type MachineState = "running" | "shutting-down" | "stopped"

/** A launched machine. */
export interface MachineService {
  /** The name used for its sockets and log. */
  readonly name: string
  /** The argv QEMU was started with, wrapper included. */
  readonly command: ReadonlyArray<string>
  /** QEMU's process id (the seed's `get_pid`, which returns it only while running). */
  readonly pid: number
  /** The private temp dir (removed at shutdown unless `keepTempDir`). */
  readonly tempDir: string
  /** Where `<name>.log` is. */
  readonly logDir: string
  /** QEMU's stdout and stderr file. */
  readonly logPath: string
  /** The QMP session (fails if QMP is off). */
  readonly qmp: Effect.Effect<QmpClient.QmpClientService, MachineStateError>
  /** The serial console (fails if no console was configured). */
  readonly console: Effect.Effect<ConsoleSocket.ConsoleSocketService, MachineStateError>
  /**
   * The seed's `command()`: the `return` value or `QMPCommandError`. A
   * successful `quit` is remembered. Commands of the generated QAPI schema are
   * typed (see `Qapi`); other names are untyped.
   */
  readonly execute: Qapi.TypedExecute<MachineExecuteOptions, MachineCommandError>
  /** The seed's `qmp()`: the whole reply. A successful `quit` is remembered. */
  readonly executeRaw: (
    command: string,
    args?: Arguments | undefined,
    options?: MachineExecuteOptions
  ) => Effect.Effect<Reply, QmpClient.RawCommandError | MachineStateError>
  /** A human monitor command line through QMP. */
  readonly hmp: (commandLine: string, options?: QmpClient.ExecuteOptions) => Effect.Effect<string, MachineCommandError>
  /** Runs a command and waits for the event it causes; see `QmpClient.executeAndWait`. */
  readonly executeAndWait: (
    command: string,
    args: Arguments | undefined,
    filters: string | ReadonlyArray<EventFilter>,
    options?: QmpClient.ExecuteOptions
  ) => Effect.Effect<QmpClient.ExecuteAndWaitResult, MachineCommandError>
  /**
   * The seed's `send_fd_scm`: sends an open descriptor, or a file it opens
   * (read-only unless `writable`), over the QMP socket for the next
   * `getfd`/`add-fd`. Needs a unix-socket monitor (the default socket pair or
   * a path) and the native helper; see `QmpClient.sendFdScm`.
   */
  readonly sendFdScm: (
    source: QmpClient.FdSource
  ) => Effect.Effect<void, FdPassingError | QMPDisconnected | MachineStateError>
  /** Passes a descriptor with `getfd`, named `fdname`, in one message; see `QmpClient.getfd`. */
  readonly getfd: (
    fdname: string,
    source: QmpClient.FdSource,
    options?: QmpClient.ExecuteOptions
  ) => Effect.Effect<void, MachineCommandError | FdPassingError>
  /** Passes a descriptor into an fd set with `add-fd`, in one message; see `QmpClient.addFd`. */
  readonly addFd: (
    source: QmpClient.FdSource,
    options?: QmpClient.AddFdOptions
  ) => Effect.Effect<QmpClient.AddFdInfo, MachineCommandError | FdPassingError>
  /** QMP events from now on; ends with the session. Empty without QMP. */
  readonly events: Stream.Stream<Event>
  /** The events with these names, typed; see `QmpClient.eventsNamed`. Empty without QMP. */
  readonly eventsNamed: <K extends Qapi.EventName>(
    ...names: ReadonlyArray<K>
  ) => Stream.Stream<Qapi.TypedEvent<K>, QMPDecodeError>
  /** The seed's `event_wait` (default timeout 60 s). Events of the generated QAPI schema come typed. */
  readonly eventWait: Qapi.TypedEventWait<
    QmpClient.EventWaitOptions,
    QMPTimeout | QMPDisconnected | MachineStateError
  >
  /** The seed's `events_wait`: one total timeout. */
  readonly eventsWait: (
    filters: ReadonlyArray<EventFilter>,
    options?: { readonly timeout?: Duration.DurationInput | undefined }
  ) => Effect.Effect<Event, QMPTimeout | QMPDisconnected | MachineStateError>
  /** The seed's `get_qmp_event()`. */
  readonly getEvent: Effect.Effect<Option.Option<Event>, MachineStateError>
  /** The seed's `get_qmp_events()`. */
  readonly getEvents: Effect.Effect<ReadonlyArray<Event>, MachineStateError>
  /** The current state. */
  readonly state: Effect.Effect<MachineState>
  /** True while the QEMU process runs. */
  readonly isRunning: Effect.Effect<boolean>
  /** QEMU's exit code once it exited normally (the seed's `exitcode`, which gives -signal instead). */
  readonly exitCode: Effect.Effect<Option.Option<number>>
  /** The exit status once it exited. */
  readonly exitStatus: Effect.Effect<Option.Option<QemuProcess.ExitStatus>>
  /** QEMU's output (the seed's `get_log`): what the log holds so far, or all of it after shutdown; the last 16 MiB of a longer one. */
  readonly log: Effect.Effect<string>
  /**
   * Shuts QEMU down and cleans up, as the seed: console closed first, `quit`
   * (unless already issued), wait; on any failure SIGKILL and
   * `AbnormalShutdown`. A no-op once shut down; a concurrent call waits for
   * the first.
   */
  readonly shutdown: (options?: ShutdownOptions) => Effect.Effect<void, AbnormalShutdown>
  /**
   * SIGKILL, wait, clean up (the seed's `kill`). During a graceful shutdown
   * it escalates that shutdown, and waits for it.
   */
  readonly kill: Effect.Effect<void, AbnormalShutdown>
  /**
   * Waits for the guest to power off by itself, then cleans up (the seed's
   * `wait`). Default 30 s; past it, SIGKILL and `AbnormalShutdown`. The wait
   * can be interrupted, leaving the machine running.
   */
  readonly wait: (timeout?: Duration.DurationInput) => Effect.Effect<void, AbnormalShutdown>
}

/** A launched machine, as a service (see `layer`). */
export class Machine extends Context.Tag("qemu-machine/Machine")<Machine, MachineService>() {}

const DEFAULT_LAUNCH_TIMEOUT = Duration.seconds(30)
const DEFAULT_SHUTDOWN_TIMEOUT = Duration.seconds(30)
const HARD_KILL_TIMEOUT = Duration.seconds(60)
/** How long a QEMU that closed its monitor during the launch gets to report its exit status. */
const EXIT_GRACE = Duration.seconds(2)
/** How much of QEMU's output `vm.log` reads (the last part): a flooding QEMU's log can be any size. */
const MAX_KEPT_LOG = 16 * 1024 * 1024
/** How much of QEMU's output a launch failure carries. */
const OUTPUT_TAIL_BYTES = 64 * 1024
const SETPRIV = "/usr/bin/setpriv"

let machineCounter = 0

/** Errors `launch` can end in. */
export type LaunchError = VMLaunchFailure | SocketPathTooLong

/** What a launch got to before it failed: for the error it reports. */
interface Attempt {
  argv: ReadonlyArray<string>
  logPath: string | undefined
}

/** QEMU exited before the launch completed. */
class ExitedEarly extends Data.TaggedError("ExitedEarly")<{ readonly status: QemuProcess.ExitStatus }> {}

/** The launch ran out of `launchTimeout`, at whatever step it was. */
class LaunchTimedOut extends Data.TaggedError("LaunchTimedOut")<{ readonly timeout: Duration.Duration }> {}

/**
 * Launches QEMU and negotiates QMP; the scope's end shuts it down (see
 * `MachineService.shutdown`) and removes every file it made but the kept
 * logs. On failure, everything is already cleaned up and the error carries
 * the command line, the exit status and QEMU's output. `launchTimeout`
 * bounds the whole launch, every step included.
 */
export const launch = (config: MachineConfig = {}): Effect.Effect<MachineService, LaunchError, Scope.Scope> =>
  Effect.gen(function*() {
    const outer = yield* Effect.scope
    // Everything the machine holds lives in `inner`; shutdown closes it early.
    const inner = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    const attempt: Attempt = { argv: [config.binary ?? DEFAULT_BINARY], logPath: undefined }
    const timeout = Duration.decode(config.launchTimeout ?? DEFAULT_LAUNCH_TIMEOUT)
    return yield* launchIn(inner, outer, config, attempt).pipe(
      Effect.timeoutFail({ duration: timeout, onTimeout: () => new LaunchTimedOut({ timeout }) }),
      Effect.onError(() => Scope.close(inner, Exit.void)),
      Effect.catchTag("LaunchTimedOut", (timedOut) =>
        // `inner` is closed by now: QEMU was killed and waited for, so its log is complete.
        Effect.flatMap(
          attempt.logPath === undefined ? Effect.succeed("") : Files.readTail(attempt.logPath, OUTPUT_TAIL_BYTES),
          (output) =>
            Effect.fail(VMLaunchFailure.fromArgv({
              reason: "Timeout",
              argv: attempt.argv,
              exitCode: null,
              signal: null,
              output,
              cause: `the launch did not complete within ${Duration.format(timedOut.timeout)}`
            }))
        ))
    )
  }).pipe(Effect.provide(NodeServices))

const NodeServices = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, QemuProcess.layer)

const describe = (cause: unknown): string =>
  cause !== null && typeof cause === "object" && "message" in cause && typeof cause.message === "string"
    ? cause.message
    : cause !== null && typeof cause === "object" && "detail" in cause && typeof cause.detail === "string"
    ? cause.detail
    : String(cause)

const launchIn = (
  inner: Scope.CloseableScope,
  outer: Scope.Scope,
  config: MachineConfig,
  attempt: Attempt
): Effect.Effect<
  MachineService,
  LaunchError,
  FileSystem.FileSystem | Path.Path | QemuProcess.QemuProcess
> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const spawner = yield* QemuProcess.QemuProcess
    const name = config.name ?? `qemu-${process.pid}-${++machineCounter}`

    const setupFailure = (detail: string) => (cause: unknown) =>
      VMLaunchFailure.fromArgv({
        reason: "Setup",
        argv: attempt.argv,
        exitCode: null,
        signal: null,
        output: "",
        cause: `${detail}: ${describe(cause)}`
      })
    const inScope = <A, E, R>(effect: Effect.Effect<A, E, R>) => Scope.extend(effect, inner)

    const temp = yield* TempFiles.make({ baseDir: config.baseTempDir, keep: config.keepTempDir }).pipe(
      inScope,
      Effect.mapError(setupFailure("temp dir"))
    )
    const logDir = config.logDir ?? temp.directory
    const logPath = path.join(logDir, `${name}.log`)
    const logFile = yield* Files.createPrivate(logPath).pipe(inScope, Effect.mapError(setupFailure("QEMU's log")))
    attempt.logPath = logPath
    const readLog = Files.readTail(logPath, MAX_KEPT_LOG).pipe(Effect.provideService(FileSystem.FileSystem, fs))
    const consoleLogPath = config.console?.logFile === true
      ? path.join(logDir, `${name}-console.log`)
      : typeof config.console?.logFile === "string"
      ? config.console.logFile
      : undefined
    // Opened before spawn, so a bad path is a setup failure, not a failed handshake.
    const consoleLog = consoleLogPath === undefined
      ? undefined
      : yield* Files.createPrivate(consoleLogPath).pipe(inScope, Effect.mapError(setupFailure("the console log")))

    const extraFds: Array<QemuProcess.ExtraFd> = []
    const context: Channels.ChannelContext = {
      scope: inner,
      temp,
      name,
      sockDir: config.sockDir,
      addSocketPair: () => extraFds.push("socketpair") - 1
    }
    const channelSetup = <A>(effect: Effect.Effect<A, Channels.ChannelSetupFailed | SocketPathTooLong, FileSystem.FileSystem>) =>
      Effect.catchTag(effect, "ChannelSetupFailed", (e) => Effect.fail(setupFailure("channel")(e.detail)))
    const monitor = config.qmp === false
      ? undefined
      : yield* channelSetup(Channels.monitor(context, config.monitor ?? { _tag: "SocketPair" }))
    const console = config.console === undefined
      ? undefined
      : yield* channelSetup(Channels.console(context, config.console))

    // -add-fd descriptors, inherited at the next free numbers. Paths are opened here and closed with the machine.
    const addFdNumbers: Array<number> = []
    for (const [index, entry] of (config.addFds ?? []).entries()) {
      const fd = yield* FdPassing.open("path" in entry ? { path: entry.path, writable: entry.writable } : entry.fd).pipe(
        inScope,
        Effect.mapError((e) => setupFailure(`addFds[${index}]`)(e.detail))
      )
      addFdNumbers.push(FIRST_EXTRA_FD + extraFds.push(fd) - 1)
    }

    const wrapper = [...(config.wrapper ?? [])]
    if (config.dieWithParent !== false && (yield* fs.exists(SETPRIV).pipe(Effect.orElseSucceed(() => false)))) {
      wrapper.unshift(SETPRIV, "--pdeathsig", "KILL", "--")
    }
    const command = buildCommand(
      config,
      { monitor: monitor?.endpoint, console: console?.endpoint, addFdNumbers },
      wrapper
    )
    attempt.argv = command
    yield* Effect.logDebug(`VM launch command: ${formatCommand(command)}`)

    const child = yield* spawner.spawn({
      command,
      output: logFile.fd,
      extraFds,
      env: config.env === undefined ? undefined : { ...process.env, ...config.env },
      forks: (config.wrapper ?? []).length > 0
    }).pipe(
      inScope,
      Effect.mapError((e) =>
        VMLaunchFailure.fromArgv({
          reason: "Spawn",
          argv: command,
          exitCode: null,
          signal: null,
          output: "",
          cause: e.message
        })
      )
    )

    /** Turns a failure after spawn into a `VMLaunchFailure` with QEMU's status and output. */
    const launchFailure = (reason: "Handshake" | "SchemaDrift", cause: unknown) =>
      Effect.gen(function*() {
        // QEMU that closed its monitor is usually on its way out: give it a moment to report its status
        // (the launch timeout still bounds this). One refused for its schema is healthy: no point waiting.
        const status = reason === "SchemaDrift"
          ? Option.none()
          : yield* child.wait(EXIT_GRACE).pipe(Effect.option)
        if (Option.isNone(status)) {
          yield* child.kill("SIGKILL")
          yield* child.waitTree(HARD_KILL_TIMEOUT).pipe(Effect.ignore)
        }
        return VMLaunchFailure.fromArgv({
          reason: Option.isSome(status) ? "Exited" : reason,
          argv: command,
          exitCode: Option.isSome(status) ? status.value.exitCode : null,
          signal: Option.isSome(status) ? status.value.signal : null,
          output: yield* Files.readTail(logPath, OUTPUT_TAIL_BYTES),
          cause
        })
      }).pipe(Effect.flatMap(Effect.fail))
    const failAfterSpawn = (cause: unknown) =>
      cause instanceof ExitedEarly
        ? Effect.flatMap(Files.readTail(logPath, OUTPUT_TAIL_BYTES), (output) =>
          Effect.fail(VMLaunchFailure.fromArgv({
            reason: "Exited",
            argv: command,
            exitCode: cause.status.exitCode,
            signal: cause.status.signal,
            output,
            cause: "QEMU exited during the launch"
          })))
        : launchFailure(cause instanceof QMPSchemaDrift ? "SchemaDrift" : "Handshake", cause)
    /** Each step after spawn races QEMU's exit, which would otherwise leave it waiting for a peer that is gone. */
    const orExit = <A, E>(step: Effect.Effect<A, E, Scope.Scope | FileSystem.FileSystem>) =>
      Effect.raceFirst(
        step.pipe(inScope),
        Effect.flatMap(child.awaitExit, (status) => Effect.fail(new ExitedEarly({ status })))
      ).pipe(Effect.catchAll(failAfterSpawn))

    const launchTimeout = config.launchTimeout ?? DEFAULT_LAUNCH_TIMEOUT
    const qmp = monitor === undefined ? Option.none<QmpClient.QmpClientService>() : yield* orExit(
      monitor.open(child, launchTimeout).pipe(
        Effect.flatMap((transport) =>
          QmpClient.fromTransport(transport, {
            greetingTimeout: launchTimeout,
            commandTimeout: config.qmpTimeout,
            onTraffic: config.onQmpTraffic,
            decode: config.qmpDecode,
            schemaCheck: config.schemaCheck
          })
        ),
        Effect.asSome
      )
    )

    const consoleSocket = console === undefined ? Option.none<ConsoleSocket.ConsoleSocketService>() : yield* orExit(
      console.open(child, launchTimeout).pipe(
        Effect.flatMap((transport) =>
          ConsoleSocket.fromTransport(transport, {
            bufferSize: config.console?.bufferSize,
            logFile: consoleLog,
            label: `${name} console`
          })
        ),
        Effect.asSome
      )
    )

    return yield* running({
      name,
      command,
      child,
      qmp,
      console: consoleSocket,
      temp,
      logDir,
      logPath,
      readLog,
      inner,
      outer,
      config
    })
  })

interface RunningParts {
  readonly name: string
  readonly command: ReadonlyArray<string>
  readonly child: QemuProcess.ChildHandle
  readonly qmp: Option.Option<QmpClient.QmpClientService>
  readonly console: Option.Option<ConsoleSocket.ConsoleSocketService>
  readonly temp: TempFiles.TempFilesService
  readonly logDir: string
  readonly logPath: string
  readonly readLog: Effect.Effect<string>
  readonly inner: Scope.CloseableScope
  readonly outer: Scope.Scope
  readonly config: MachineConfig
}

const running = (parts: RunningParts): Effect.Effect<MachineService> =>
  Effect.gen(function*() {
    const { child, command, config, inner, outer, readLog } = parts
    let state: MachineState = "running"
    let quitIssued = false
    let userKilled = false
    let finalLog: string | undefined
    const stopped = yield* Deferred.make<void>()

    const stateError = (operation: string, detail: string) =>
      new MachineStateError({ operation, state, detail })

    const qmp: Effect.Effect<QmpClient.QmpClientService, MachineStateError> = Effect.suspend(() =>
      Option.isNone(parts.qmp)
        ? Effect.fail(stateError("qmp", "the machine was launched without a QMP monitor"))
        : state !== "running"
        ? Effect.fail(stateError("qmp", "QMP is closed"))
        : Effect.succeed(parts.qmp.value)
    )

    const prepare = (args: Arguments | undefined, options: MachineExecuteOptions | undefined) =>
      args !== undefined && options?.convertKeys === true ? convertKeys(args) : args

    const executeRaw = (command: string, args?: Arguments, options?: MachineExecuteOptions) =>
      Effect.flatMap(qmp, (client) =>
        Effect.tap(client.executeRaw(command, prepare(args, options), options), (reply) => {
          if (command === "quit" && !("error" in reply)) quitIssued = true
        }))

    const execute = (command: string, args?: Arguments, options?: MachineExecuteOptions) =>
      Effect.flatMap(qmp, (client) =>
        Effect.tap(client.execute(command, prepare(args, options), options), () => {
          if (command === "quit") quitIssued = true
        }))

    // The seed's _early_cleanup: close the console first, or QEMU may block writing to it while we wait.
    const earlyCleanup = Option.match(parts.console, { onNone: () => Effect.void, onSome: (c) => c.close })
    const closeQmp = Option.match(parts.qmp, { onNone: () => Effect.void, onSome: (c) => c.close })

    const hardShutdown = Effect.gen(function*() {
      yield* earlyCleanup
      yield* child.kill("SIGKILL")
      yield* child.waitTree(HARD_KILL_TIMEOUT).pipe(
        Effect.mapError((cause) =>
          new AbnormalShutdown({ detail: "QEMU did not exit after SIGKILL", exitCode: null, signal: null, cause })
        )
      )
    })

    /**
     * `quit`, then the exit. A monitor already gone (QEMU quit by itself, or was
     * killed) still fails the soft path, as the seed's, but first QEMU gets the
     * rest of the timeout to exit: a monitor closes a moment before the exit
     * status arrives, and a SIGKILL in between would hide the real one.
     */
    const softShutdown = (timeout: Duration.Duration) =>
      Effect.gen(function*() {
        yield* earlyCleanup
        let quitFailed: QmpClient.RawCommandError | undefined
        if (Option.isSome(parts.qmp)) {
          const client = parts.qmp.value
          if (!quitIssued) {
            const quit = yield* client.executeRaw("quit").pipe(Effect.ensuring(closeQmp), Effect.either)
            if (Either.isLeft(quit)) {
              if (quit.left._tag !== "QMPDisconnected") return yield* quit.left
              quitFailed = quit.left
            }
          } else {
            yield* closeQmp
          }
        }
        yield* child.awaitExit
        if (quitFailed !== undefined) return yield* quitFailed
      }).pipe(
        // Shutdown runs uninterruptibly; the timeout must still be able to cut this short.
        Effect.interruptible,
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new QemuProcess.WaitTimeout(child.pid, Duration.toMillis(timeout))
        })
      )

    const doShutdown = (timeout: Duration.Duration) =>
      softShutdown(timeout).pipe(
        Effect.catchAll((cause) =>
          Effect.zipRight(
            hardShutdown,
            Effect.flatMap(child.status, (status) =>
              Effect.fail(
                new AbnormalShutdown({
                  detail: Option.isSome(status) && status.value.signal === "SIGKILL"
                    ? "QEMU was killed"
                    : "QEMU ended without a clean quit",
                  exitCode: Option.getOrNull(Option.flatMap(status, (s) => Option.fromNullable(s.exitCode))),
                  signal: Option.getOrNull(Option.flatMap(status, (s) => Option.fromNullable(s.signal))),
                  cause
                })
              ))
          )
        )
      )

    const postShutdown = Effect.gen(function*() {
      yield* earlyCleanup
      yield* closeQmp
      finalLog = yield* readLog
      const status = yield* child.status
      yield* Scope.close(inner, Exit.void)
      if (Option.isSome(status)) {
        const signal = status.value.signal
        if (signal !== null && !(userKilled && signal === "SIGKILL")) {
          yield* Effect.logWarning(`qemu received signal ${signal}; command: "${formatCommand(command)}"`)
        }
      }
      quitIssued = false
      userKilled = false
      state = "stopped"
      yield* Deferred.succeed(stopped, undefined)
    })

    const shutdown = (options?: ShutdownOptions): Effect.Effect<void, AbnormalShutdown> =>
      Effect.uninterruptible(Effect.suspend(() => {
        if (state !== "running") return Deferred.await(stopped)
        state = "shutting-down"
        const work = options?.hard === true
          ? Effect.zipRight(Effect.sync(() => {
            userKilled = true
          }), hardShutdown)
          : doShutdown(Duration.decode(options?.timeout ?? DEFAULT_SHUTDOWN_TIMEOUT))
        return Effect.ensuring(work, postShutdown)
      }))

    // Leaving the scope shuts down like `shutdown()`; an abnormal end is logged, not hidden.
    yield* Scope.addFinalizer(
      outer,
      shutdown({ timeout: config.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT }).pipe(
        Effect.catchAll((e) => Effect.logWarning(`${parts.name}: ${e.message}`))
      )
    )

    const withClient = <A, E>(f: (client: QmpClient.QmpClientService) => Effect.Effect<A, E>) =>
      Effect.flatMap(qmp, f)

    const service: MachineService = {
      name: parts.name,
      command,
      pid: child.pid,
      tempDir: parts.temp.directory,
      logDir: parts.logDir,
      logPath: parts.logPath,
      qmp,
      console: Effect.suspend(() =>
        Option.isNone(parts.console)
          ? Effect.fail(stateError("console", "the machine was launched without a console"))
          : Effect.succeed(parts.console.value)
      ),
      // One implementation behind both overloads: typed names differ only in their static types.
      execute: execute as MachineService["execute"],
      executeRaw,
      hmp: (commandLine, options) => withClient((c) => c.hmp(commandLine, options)),
      executeAndWait: (command, args, filters, options) =>
        withClient((c) =>
          Effect.tap(c.executeAndWait(command, args, filters, options), () => {
            if (command === "quit") quitIssued = true
          })
        ),
      sendFdScm: (source) => withClient((c) => c.sendFdScm(source)),
      getfd: (fdname, source, options) => withClient((c) => c.getfd(fdname, source, options)),
      addFd: (source, options) => withClient((c) => c.addFd(source, options)),
      events: Option.match(parts.qmp, { onNone: () => Stream.empty, onSome: (c) => c.events }),
      eventsNamed: (...names) =>
        Option.match(parts.qmp, { onNone: () => Stream.empty, onSome: (c) => c.eventsNamed(...names) }),
      eventWait: ((name: string, options?: QmpClient.EventWaitOptions) =>
        withClient((c) => c.eventWait(name, options))) as MachineService["eventWait"],
      eventsWait: (filters, options) => withClient((c) => c.eventsWait(filters, options)),
      getEvent: withClient((c) => c.getEvent),
      getEvents: withClient((c) => c.getEvents),
      state: Effect.sync(() => state),
      isRunning: Effect.map(child.status, Option.isNone),
      exitCode: Effect.map(child.status, Option.flatMap((s) => Option.fromNullable(s.exitCode))),
      exitStatus: child.status,
      log: Effect.suspend(() => finalLog !== undefined ? Effect.succeed(finalLog) : readLog),
      shutdown,
      // During a graceful shutdown, kill escalates it: SIGKILL now, then the shutdown's own cleanup.
      kill: Effect.uninterruptible(Effect.suspend(() => {
        if (state !== "shutting-down") return shutdown({ hard: true })
        userKilled = true
        return Effect.zipRight(child.kill("SIGKILL"), Deferred.await(stopped))
      })),
      wait: (timeout) =>
        Effect.suspend(() => {
          if (state !== "running") return Deferred.await(stopped)
          const duration = Duration.decode(timeout ?? DEFAULT_SHUTDOWN_TIMEOUT)
          // Unlike the seed, the waiting itself can be interrupted (the scope's finalizer then shuts down).
          return child.wait(duration).pipe(
            Effect.either,
            Effect.flatMap((waited) =>
              Effect.suspend(() => {
                quitIssued = true
                // Exited: a clean shutdown. Still running after the timeout: the soft path fails at once, as the seed's.
                return shutdown({ timeout: waited._tag === "Right" ? duration : Duration.zero })
              })
            )
          )
        })
    }
    return service
  })

/** A machine that lives as long as the layer: for a test suite that shares one VM. */
export const layer = (config: MachineConfig = {}): Layer.Layer<Machine, LaunchError> =>
  Layer.scoped(Machine, launch(config))

/** Re-exported for convenience. */
export type { MachineConfig } from "./MachineConfig.js"
