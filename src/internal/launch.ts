/**
 * Starting a machine (`_pre_launch` and `_launch` of QEMU's Python
 * `QEMUMachine`): private dir, logs, channels, `-add-fd` descriptors, spawn;
 * then `connect.ts` (QMP handshake, console). Everything is acquired into the
 * machine's scope; on any failure, interruption or `launchTimeout`, that
 * scope is closed and the error says how far the launch got. See
 * `docs/lifecycle.md`.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { type SocketPathTooLong, VMLaunchFailure } from "../Errors.js"
import { buildCommand, DEFAULT_BINARY, FIRST_EXTRA_FD, type MachineConfig } from "../MachineConfig.js"
import * as QemuProcess from "../QemuProcess.js"
import * as Channels from "./channels.js"
import {
  connect,
  DEFAULT_LAUNCH_TIMEOUT,
  killForFailure,
  OUTPUT_TAIL_BYTES,
  timeoutCause
} from "./connect.js"
import * as Deadline from "./deadline.js"
import * as FdPassing from "./fdPassing.js"
import * as Files from "./files.js"
import { isNodeFileSystem } from "./platform.js"
import * as PrivateDir from "./privateDir.js"
import { formatCommand } from "./redact.js"
import type { Started } from "./started.js"
import * as Timeout from "./timeout.js"
import * as Tracing from "./tracing.js"

export type { Started } from "./started.js"

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
 *
 * With Node's own spawner and file system, the steps before the spawn are
 * system calls that do not wait, and each wait after it (QMP's handshake, a
 * socket's accept) is given what is left of `launchTimeout`: a deadline, not
 * a timer fiber around the whole launch (its fork is a step of every launch;
 * docs/performance.md). With any other spawner or file system, whose steps
 * could wait, the whole launch runs under one timer.
 */
export const start = (
  config: MachineConfig,
  machineScope: Scope.CloseableScope
): Effect.Effect<Started, LaunchError, FileSystem.FileSystem | Path.Path> =>
  Effect.contextWithEffect((context: Context.Context<FileSystem.FileSystem | Path.Path>) => {
    const attempt: Attempt = { argv: [config.binary ?? DEFAULT_BINARY], log: undefined, child: undefined }
    const timeout = Duration.decode(config.launchTimeout ?? DEFAULT_LAUNCH_TIMEOUT)
    const name = config.name ?? `qemu-${process.pid}-${++machineCounter}`
    const ownSteps = Context.get(context, QemuProcess.QemuProcess).spawn === QemuProcess.spawn &&
      isNodeFileSystem(Context.get(context, FileSystem.FileSystem))
    const deadline = ownSteps ? Deadline.after(timeout) : undefined
    return steps(config, name, machineScope, attempt, deadline).pipe(
      (launch) =>
        deadline !== undefined
          ? launch
          : Timeout.timeoutFail(launch, { duration: timeout, onTimeout: () => new LaunchTimedOut({ timeout }) }),
      Effect.catchTag("LaunchTimedOut", (timedOut) =>
        Effect.gen(function*() {
          // QEMU killed and waited for first, so its log is complete; read while the machine's scope still holds it.
          if (attempt.child !== undefined) yield* killForFailure(attempt.child)
          return yield* Effect.fail(VMLaunchFailure.fromArgv({
            reason: "Timeout",
            argv: attempt.argv,
            exitCode: null,
            signal: null,
            output: attempt.log === undefined ? "" : yield* attempt.log.readTail(OUTPUT_TAIL_BYTES),
            cause: timeoutCause(timedOut.timeout)
          }))
        })),
      Effect.onError(() => Scope.close(machineScope, Exit.void)),
      // No `annotateLogs` around the whole: each is a fiber-ref change and its undoing (about 17 Effect steps,
      // docs/performance.md). The one log before the spawn carries the name itself; after it, `connect` runs
      // under `machine` and `pid` (the session's and the console's own fibers inherit them).
      Tracing.withSpan("Machine.launch", { attributes: { "qemu.machine": name } })
    )
  })

const steps = (
  config: MachineConfig,
  name: string,
  machineScope: Scope.CloseableScope,
  attempt: Attempt,
  deadline: Deadline.Deadline | undefined
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
    yield* Effect.whenLogLevel(
      Effect.suspend(() => Effect.annotateLogs(Effect.logDebug(`launch command: ${formatCommand(command)}`), { machine: name })),
      "Debug"
    )

    const spawnOptions: QemuProcess.SpawnOptions = {
      command,
      output: logFile.fd,
      extraFds,
      env: config.env === undefined ? undefined : { ...process.env, ...config.env },
      forks: (config.wrapper ?? []).length > 0
    }
    // Node's own spawner (where there is a deadline) takes the machine's scope as an argument.
    const child = yield* (deadline !== undefined
      ? QemuProcess.spawnIn(spawnOptions, machineScope)
      : inScope(spawner.spawn(spawnOptions))).pipe(
      Effect.mapError((e) =>
        VMLaunchFailure.fromArgv({ reason: "Spawn", argv: command, exitCode: null, signal: null, output: "", cause: e.message })
      ),
      Tracing.withSpan("launch.spawn")
    )
    attempt.child = child
    yield* Tracing.annotate("qemu.pid", child.pid)
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
    }, machineScope, deadline).pipe(
      // The session's and the console's own fibers inherit these.
      Effect.annotateLogs({ machine: name, pid: child.pid })
    )
  })
