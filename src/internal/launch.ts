/**
 * Starting a machine (`_pre_launch`, `_launch` and `_post_launch` of QEMU's
 * Python `QEMUMachine`): private dir, logs, channels, `-add-fd` descriptors,
 * spawn, QMP handshake, console. Everything is acquired into the machine's
 * scope; on any failure, interruption or `launchTimeout`, that scope is
 * closed and the error says how far the launch got. See `docs/lifecycle.md`.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as ConsoleSocket from "../ConsoleSocket.js"
import * as GuestAgent from "../GuestAgent.js"
import { QMPSchemaDrift, type SocketPathTooLong, VMLaunchFailure } from "../Errors.js"
import { buildCommand, DEFAULT_BINARY, FIRST_EXTRA_FD, type MachineConfig } from "../MachineConfig.js"
import * as QemuProcess from "../QemuProcess.js"
import * as QmpClient from "../QmpClient.js"
import * as Channels from "./channels.js"
import * as FdPassing from "./fdPassing.js"
import * as Files from "./files.js"
import * as PrivateDir from "./privateDir.js"
import * as Recorder from "./recorder.js"
import * as Timeout from "./timeout.js"
import { formatCommand, redactArgv } from "./redact.js"
import * as Tracing from "./tracing.js"

/** What a started machine is made of. */
export interface Started {
  readonly name: string
  readonly command: ReadonlyArray<string>
  readonly child: QemuProcess.ChildHandle
  readonly qmp: Option.Option<QmpClient.QmpClientService>
  /**
   * Releases what the QMP session holds (its fibers, event hubs, socket)
   * ahead of the machine's scope: a shutdown does it while QEMU exits.
   */
  readonly releaseQmp: Effect.Effect<void>
  readonly console: Option.Option<ConsoleSocket.ConsoleSocketService>
  readonly guestAgent: Option.Option<GuestAgent.GuestAgentService>
  readonly tempDir: string
  /**
   * Removes the temp dir now, unless it is kept (a shutdown does it while
   * QEMU exits; the log stays readable through its descriptor).
   */
  readonly removeTempDir: Effect.Effect<void>
  readonly logDir: string
  readonly logPath: string
  /** QEMU's output so far (its last `MAX_LOG` bytes). */
  readonly readLog: Effect.Effect<string>
  /** The flight recorder, unless the config turned it off. */
  readonly recorder: Option.Option<Recorder.Recorder>
}

const DEFAULT_LAUNCH_TIMEOUT = Duration.seconds(30)
/** How long a QEMU that closed its monitor during the launch gets to report its exit status. */
const EXIT_GRACE = Duration.seconds(2)
const HARD_KILL_TIMEOUT = Duration.seconds(60)
/** How much of QEMU's output a launch failure carries. */
const OUTPUT_TAIL_BYTES = 64 * 1024
/** How much of QEMU's output `readLog` reads: a flooding QEMU's log can be any size. */
const MAX_LOG = 16 * 1024 * 1024
const SETPRIV = "/usr/bin/setpriv"

let machineCounter = 0
let setprivPresent: boolean | undefined

/** Errors a launch can end in. */
export type LaunchError = VMLaunchFailure | SocketPathTooLong

/** What a launch got to before it failed: for the error it reports. */
interface Attempt {
  argv: ReadonlyArray<string>
  log: Files.LogFile | undefined
  child: QemuProcess.ChildHandle | undefined
}

/** The launch ran out of `launchTimeout`, at whatever step it was. */
class LaunchTimedOut extends Data.TaggedError("LaunchTimedOut")<{ readonly timeout: Duration.Duration }> {}

/** QEMU exited before the launch completed. */
class ExitedEarly extends Data.TaggedError("ExitedEarly")<{ readonly status: QemuProcess.ExitStatus }> {}

const describe = (cause: unknown): string =>
  cause !== null && typeof cause === "object" && "message" in cause && typeof cause.message === "string"
    ? cause.message
    : cause !== null && typeof cause === "object" && "detail" in cause && typeof cause.detail === "string"
    ? cause.detail
    : String(cause)

/**
 * Starts QEMU into `machineScope` (closed on failure). `launchTimeout`
 * bounds every step: past it, whatever runs is interrupted, the scope closed
 * (QEMU killed and waited for), and the error carries QEMU's output.
 */
export const start = (
  config: MachineConfig,
  machineScope: Scope.CloseableScope
): Effect.Effect<Started, LaunchError, FileSystem.FileSystem | Path.Path> =>
  Effect.suspend(() => {
    const attempt: Attempt = { argv: [config.binary ?? DEFAULT_BINARY], log: undefined, child: undefined }
    const timeout = Duration.decode(config.launchTimeout ?? DEFAULT_LAUNCH_TIMEOUT)
    const name = config.name ?? `qemu-${process.pid}-${++machineCounter}`
    return steps(config, name, machineScope, attempt).pipe(
      (launch) => Timeout.timeoutFail(launch, { duration: timeout, onTimeout: () => new LaunchTimedOut({ timeout }) }),
      Effect.catchTag("LaunchTimedOut", (timedOut) =>
        Effect.gen(function*() {
          // QEMU killed and waited for first, so its log is complete; read while the machine's scope still holds it.
          if (attempt.child !== undefined) {
            yield* attempt.child.kill("SIGKILL")
            yield* attempt.child.waitTree(HARD_KILL_TIMEOUT).pipe(Effect.ignore)
          }
          return yield* Effect.fail(VMLaunchFailure.fromArgv({
            reason: "Timeout",
            argv: attempt.argv,
            exitCode: null,
            signal: null,
            output: attempt.log === undefined ? "" : yield* attempt.log.readTail(OUTPUT_TAIL_BYTES),
            cause: `the launch did not complete within ${Duration.format(timedOut.timeout)}`
          }))
        })),
      Effect.onError(() => Scope.close(machineScope, Exit.void)),
      Effect.annotateLogs({ machine: name }),
      Tracing.withSpan("Machine.launch", { attributes: { "qemu.machine": name } })
    )
  })

const steps = (
  config: MachineConfig,
  name: string,
  machineScope: Scope.CloseableScope,
  attempt: Attempt
): Effect.Effect<Started, LaunchError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const spawner = yield* QemuProcess.QemuProcess
    const inScope = <A, E, R>(effect: Effect.Effect<A, E, R>) => Scope.extend(effect, machineScope)
    const setupFailure = (step: string) => (cause: unknown) =>
      VMLaunchFailure.fromArgv({
        reason: "Setup",
        argv: attempt.argv,
        exitCode: null,
        signal: null,
        output: "",
        cause: `${step}: ${describe(cause)}`
      })

    // Setup: nothing runs yet, so every failure here is a `Setup` failure.
    const setup = Effect.gen(function*() {
      const temp = yield* PrivateDir.makeIn({ baseDir: config.baseTempDir, keep: config.keepTempDir }, machineScope).pipe(
        Effect.mapError(setupFailure("temp dir"))
      )
      const logDir = config.logDir ?? temp.directory
      const logPath = path.join(logDir, `${name}.log`)
      const logFile = yield* Files.openLog(logPath, machineScope, fs).pipe(Effect.mapError(setupFailure("QEMU's log")))
      attempt.log = logFile

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
        scope: machineScope,
        directory: temp.directory,
        name,
        sockDir: config.sockDir,
        addSocketPair: () => extraFds.push("socketpair") - 1
      }
      const channel = <A>(effect: Effect.Effect<A, Channels.ChannelSetupFailed | SocketPathTooLong, FileSystem.FileSystem>) =>
        Effect.catchTag(effect, "ChannelSetupFailed", (e) => Effect.fail(setupFailure("channel")(e.detail)))
      const monitor = config.qmp === false
        ? undefined
        : yield* channel(Channels.monitor(context, config.monitor ?? { _tag: "SocketPair" }))
      const console = config.console === undefined ? undefined : yield* channel(Channels.console(context, config.console))
      const guestAgent = config.guestAgent === undefined ? undefined : Channels.guestAgent(context)

      // -add-fd descriptors, inherited at the next free numbers. Paths are opened here and closed with the machine.
      const addFdNumbers: Array<number> = []
      for (const [index, entry] of (config.addFds ?? []).entries()) {
        const fd = yield* FdPassing.open("path" in entry ? { path: entry.path, writable: entry.writable } : entry.fd).pipe(
          inScope,
          Effect.mapError((e) => setupFailure(`addFds[${index}]`)(e.detail))
        )
        addFdNumbers.push(FIRST_EXTRA_FD + extraFds.push(fd) - 1)
      }
      return { temp, logDir, logPath, logFile, consoleLog, extraFds, monitor, console, guestAgent, addFdNumbers }
    }).pipe(Tracing.withSpan("launch.setup"))
    const { addFdNumbers, console, consoleLog, extraFds, guestAgent, logDir, logFile, logPath, monitor, temp } = yield* setup

    const wrapper = [...(config.wrapper ?? [])]
    if (config.dieWithParent !== false) {
      // Looked up once per process: it does not come and go.
      setprivPresent ??= yield* fs.exists(SETPRIV).pipe(Effect.orElseSucceed(() => false))
      if (setprivPresent) wrapper.unshift(SETPRIV, "--pdeathsig", "KILL", "--")
    }
    const command = buildCommand(
      config,
      { monitor: monitor?.endpoint, console: console?.endpoint, guestAgent: guestAgent?.endpoint, addFdNumbers },
      wrapper
    )
    attempt.argv = command
    // Redacting the argv costs a quarter of a millisecond: only when debug logs are wanted.
    yield* Effect.whenLogLevel(Effect.suspend(() => Effect.logDebug(`launch command: ${formatCommand(command)}`)), "Debug")

    const child = yield* spawner.spawn({
      command,
      output: logFile.fd,
      extraFds,
      env: config.env === undefined ? undefined : { ...process.env, ...config.env },
      forks: (config.wrapper ?? []).length > 0
    }).pipe(
      inScope,
      Effect.mapError((e) =>
        VMLaunchFailure.fromArgv({ reason: "Spawn", argv: command, exitCode: null, signal: null, output: "", cause: e.message })
      ),
      Tracing.withSpan("launch.spawn")
    )
    attempt.child = child
    yield* Effect.annotateCurrentSpan("qemu.pid", child.pid)

    return yield* connect(config, name, child, {
      command,
      logDir,
      logPath,
      logFile,
      monitor,
      console,
      consoleLog,
      guestAgent,
      temp
    }, machineScope).pipe(
      // The session's and the console's own fibers inherit these.
      Effect.annotateLogs({ pid: child.pid })
    )
  })

/** After spawn: the QMP handshake and the console, each racing QEMU's exit. */
const connect = (
  config: MachineConfig,
  name: string,
  child: QemuProcess.ChildHandle,
  prepared: {
    readonly command: ReadonlyArray<string>
    readonly logDir: string
    readonly logPath: string
    readonly logFile: Files.LogFile
    readonly monitor: Channels.Channel | undefined
    readonly console: Channels.Channel | undefined
    readonly consoleLog: FileSystem.File | undefined
    readonly guestAgent: Channels.Channel | undefined
    readonly temp: PrivateDir.PrivateDir
  },
  machineScope: Scope.Scope
): Effect.Effect<Started, VMLaunchFailure, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const { command, console, consoleLog, guestAgent, logDir, logFile, logPath, monitor, temp } = prepared
    // Set once the console is up; until then a record has no console tail.
    let consoleForRecord: ConsoleSocket.ConsoleSocketService | undefined
    // The command is redacted when a record is taken: most machines never need one, and QEMU is starting meanwhile.
    let redacted: ReadonlyArray<string> | undefined
    const recorder = config.flightRecorder === false ? undefined : Recorder.make(
      {
        machine: name,
        pid: child.pid,
        get command() {
          return redacted ??= redactArgv(command)
        }
      },
      (consoleBytes, logBytes) =>
        Effect.all({
          console: consoleForRecord === undefined
            ? Effect.succeed("")
            : Effect.map(consoleForRecord.recent, (text) => text.slice(-consoleBytes)),
          log: logFile.readTail(logBytes)
        }),
      config.flightRecorder
    )

    /** Turns a failure after spawn into a `VMLaunchFailure` with QEMU's status and output. */
    const afterSpawn = (cause: unknown) =>
      Effect.gen(function*() {
        // QEMU that closed its monitor is usually on its way out: give it a moment to report its status
        // (the launch timeout still bounds this). One refused for its schema is healthy: no point waiting.
        const status = cause instanceof ExitedEarly
          ? Option.some(cause.status)
          : cause instanceof QMPSchemaDrift
          ? Option.none()
          : yield* child.wait(EXIT_GRACE).pipe(Effect.option)
        if (Option.isNone(status)) {
          yield* child.kill("SIGKILL")
          yield* child.waitTree(HARD_KILL_TIMEOUT).pipe(Effect.ignore)
        }
        const failure = VMLaunchFailure.fromArgv({
          reason: Option.isSome(status) ? "Exited" : cause instanceof QMPSchemaDrift ? "SchemaDrift" : "Handshake",
          argv: command,
          exitCode: Option.isSome(status) ? status.value.exitCode : null,
          signal: Option.isSome(status) ? status.value.signal : null,
          output: yield* logFile.readTail(OUTPUT_TAIL_BYTES),
          cause: cause instanceof ExitedEarly ? "QEMU exited during the launch" : cause
        })
        return yield* Effect.fail(recorder === undefined ? failure : yield* recorder.attach(failure))
      })
    /** A step after spawn: into the machine's scope, its failure reported with QEMU's status and output. */
    const afterSpawnStep = <A, E>(
      step: Effect.Effect<A, E, Scope.Scope | FileSystem.FileSystem>,
      span: string,
      scope: Scope.Scope = machineScope
    ) => step.pipe(Scope.extend(scope), Effect.catchAll(afterSpawn), Tracing.withSpan(span))
    const launchTimeout = config.launchTimeout ?? DEFAULT_LAUNCH_TIMEOUT
    /**
     * Opens a channel. Accepting QEMU's connection, or connecting to its
     * socket, would wait for a peer that is gone if QEMU exits: that races its
     * exit. A socket pair needs no race: QEMU's exit closes its end, and the
     * session or console sees the end of the stream.
     */
    const open = (channel: Channels.Channel) =>
      channel.endpoint._tag === "Fd" ? channel.open(child, launchTimeout) : Effect.raceFirst(
        channel.open(child, launchTimeout),
        Effect.flatMap(child.awaitExit, (status) => Effect.fail(new ExitedEarly({ status })))
      )

    const qmpOptions = config.qmp === false ? {} : config.qmp ?? {}
    // A scope of its own inside the machine's, so that a shutdown can release it early.
    const qmpScope = yield* Scope.fork(machineScope, ExecutionStrategy.sequential)
    const qmp = monitor === undefined ? Option.none<QmpClient.QmpClientService>() : yield* afterSpawnStep(
      open(monitor).pipe(
        Effect.flatMap((transport) =>
          QmpClient.fromTransport(transport, {
            // `launchTimeout` bounds the whole launch: no second timer for the handshake.
            greetingTimeout: Duration.infinity,
            ...qmpOptions,
            onTraffic: Recorder.withHook(recorder, qmpOptions.onTraffic),
            spanAttributes: { "qemu.machine": name, "qemu.pid": child.pid, ...qmpOptions.spanAttributes }
          })
        ),
        Effect.asSome
      ),
      "launch.qmp",
      qmpScope
    )
    const consoleSocket = console === undefined ? Option.none<ConsoleSocket.ConsoleSocketService>() : yield* afterSpawnStep(
      open(console).pipe(
        Effect.flatMap((transport) =>
          ConsoleSocket.fromTransport(transport, {
            bufferSize: config.console?.bufferSize,
            logFile: consoleLog,
            label: `${name} console`
          })
        ),
        Effect.asSome
      ),
      "launch.console"
    )
    consoleForRecord = Option.getOrUndefined(consoleSocket)
    // The agent needs no handshake here: it may start long after the launch, and its first request syncs.
    const agent = guestAgent === undefined ? Option.none<GuestAgent.GuestAgentService>() : yield* afterSpawnStep(
      open(guestAgent).pipe(
        Effect.flatMap((transport) => GuestAgent.fromTransport(transport, { timeout: config.guestAgent?.timeout })),
        Effect.asSome
      ),
      "launch.guestAgent"
    )
    return {
      name,
      command,
      child,
      qmp,
      releaseQmp: Scope.close(qmpScope, Exit.void),
      console: consoleSocket,
      guestAgent: agent,
      tempDir: temp.directory,
      removeTempDir: temp.remove,
      logDir,
      logPath,
      readLog: logFile.readTail(MAX_LOG),
      recorder: Option.fromNullable(recorder)
    }
  })
