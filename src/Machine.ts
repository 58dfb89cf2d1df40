/**
 * A QEMU virtual machine as a scoped resource: the Effect counterpart of
 * QEMU's Python `QEMUMachine`.
 *
 * ```ts
 * Effect.scoped(Effect.gen(function*() {
 *   const vm = yield* Machine.launch({ machineType: "none" })
 *   const status = yield* vm.execute("query-status")
 *   const qmp = yield* vm.qmp                // the QMP session: events, waits, fd passing, ...
 * })) // QEMU is shut down (quit, then SIGKILL if needed) and its temp dir removed here
 * ```
 *
 * The launch steps are `internal/launch.ts`, the shutdown paths
 * `internal/lifecycle.ts`; see `docs/lifecycle.md`. A launch uses the
 * `QemuProcess`, `FileSystem` and `Path` services provided to it, Node's
 * otherwise.
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type * as ConsoleSocket from "./ConsoleSocket.js"
import * as Display from "./Display.js"
import type * as GuestAgent from "./GuestAgent.js"
import {
  type AbnormalShutdown,
  MachineStateError,
  type QMPDecodeError,
  type SocketPathTooLong,
  type VMLaunchFailure
} from "./Errors.js"
import * as Attach from "./internal/attach.js"
import * as EchoImage from "./internal/echoImage.js"
import * as Launch from "./internal/launch.js"
import * as Recording from "./internal/recording.js"
import * as Tracing from "./internal/tracing.js"
import * as Lifecycle from "./internal/lifecycle.js"
import { withNodeDefaults } from "./internal/platform.js"
import { type AttachConfig, DEFAULT_BINARY, escapeOptionValue, type MachineConfig } from "./MachineConfig.js"
import type * as QemuProcess from "./QemuProcess.js"
import type * as Qapi from "./Qapi.js"
import type * as QmpClient from "./QmpClient.js"
import { type Arguments, convertKeys, type Reply } from "./QmpProtocol.js"
import * as UserNetwork from "./UserNetwork.js"

/** Options of `shutdown`. */
export interface ShutdownOptions {
  /** Skip the graceful `quit`: SIGKILL at once, without the warning. Default false. */
  readonly hard?: boolean | undefined
  /** How long the graceful path may take before SIGKILL. Default 30 s. */
  readonly timeout?: Duration.DurationInput | undefined
}

/** Options of a command run through the machine. */
export interface MachineExecuteOptions extends QmpClient.ExecuteOptions {
  /** Turn `snake_case` argument names into `kebab-case` (`conv_keys` of the Python `QEMUMachine`). Default false. */
  readonly convertKeys?: boolean | undefined
}

/** Errors a QMP call through the machine can end in. */
export type MachineCommandError = QmpClient.CommandError | MachineStateError

/** Where the machine is in its life. */
export type MachineState = Lifecycle.State

/** A launched machine. Everything QMP offers beyond commands (events, waits, fd passing, HMP) is on `qmp`. */
export interface MachineService {
  /** The name used for its sockets and log. */
  readonly name: string
  /** The argv QEMU was started with, wrapper included, exactly (see `redactArgv` to show it). */
  readonly command: ReadonlyArray<string>
  /** QEMU's process id (the wrapper's, if one forks). */
  readonly pid: number
  /** The private temp dir (removed at shutdown unless `keepTempDir`). */
  readonly tempDir: string
  /** Where `<name>.log` is. */
  readonly logDir: string
  /** QEMU's stdout and stderr file. */
  readonly logPath: string
  /** The QMP session (fails if the machine was launched without QMP, or once it is shutting down). */
  readonly qmp: Effect.Effect<QmpClient.QmpClientService, MachineStateError>
  /** The serial console (fails if no console was configured). */
  readonly console: Effect.Effect<ConsoleSocket.ConsoleSocketService, MachineStateError>
  /** The guest agent (fails unless `guestAgent` was configured). */
  readonly guestAgent: Effect.Effect<GuestAgent.GuestAgentService, MachineStateError>
  /**
   * `command()` of the Python `QEMUMachine`: the `return` value or
   * `QMPCommandError`. Commands of the generated QAPI schema are typed (see
   * `Qapi`); other names are untyped.
   */
  readonly execute: Qapi.TypedExecute<MachineExecuteOptions, MachineCommandError>
  /** `qmp()` of the Python `QEMUMachine`: the whole reply. */
  readonly executeRaw: (
    command: string,
    args?: Arguments | undefined,
    options?: MachineExecuteOptions
  ) => Effect.Effect<Reply, QmpClient.RawCommandError | MachineStateError>
  /** Runs a command and waits for the event it causes, subscribed first; typed; see `QmpClient.executeAndWait`. */
  readonly executeAndWait: Qapi.TypedExecuteAndWait<QmpClient.ExecuteOptions, MachineCommandError>
  /** The current state. */
  readonly state: Effect.Effect<MachineState>
  /** True while the QEMU process runs. */
  readonly isRunning: Effect.Effect<boolean>
  /** QEMU's exit code once it exited normally (`exitcode()` of the Python `QEMUMachine` gives -signal instead). */
  readonly exitCode: Effect.Effect<Option.Option<number>>
  /** The exit status once it exited. */
  readonly exitStatus: Effect.Effect<Option.Option<QemuProcess.ExitStatus>>
  /** QEMU's output (`get_log()`): what the log holds so far, or all of it after shutdown; the last 16 MiB of a longer one. */
  readonly log: Effect.Effect<string>
  /**
   * Shuts QEMU down and cleans up: console closed first, `quit` (unless one
   * was already accepted, however it was sent), wait; on any failure SIGKILL
   * and `AbnormalShutdown`. A no-op once shut down; a concurrent call waits
   * for the first.
   */
  readonly shutdown: (options?: ShutdownOptions) => Effect.Effect<void, AbnormalShutdown>
  /** SIGKILL, wait, clean up (`kill()`). During a graceful shutdown it escalates that shutdown, and waits for it. */
  readonly kill: Effect.Effect<void, AbnormalShutdown>
  /**
   * Waits for the guest to power off by itself, then cleans up (`wait()`).
   * Default 30 s; past it, SIGKILL and `AbnormalShutdown`. The wait can be
   * interrupted, leaving the machine running.
   */
  readonly wait: (timeout?: Duration.DurationInput) => Effect.Effect<void, AbnormalShutdown>
  /**
   * The host port forwarded to `guestPort` (see `MachineConfig.userNetwork`),
   * read from HMP `info usernet`: QEMU listens there, whatever the guest does.
   */
  readonly forwardedPort: (
    guestPort: number,
    options?: { readonly protocol?: "tcp" | "udp" | undefined }
  ) => Effect.Effect<number, MachineCommandError | UserNetwork.PortForwardNotFound>
  /** A PNG of the display; needs a display device (`vga: "std"`), `ScreenshotUnavailable` otherwise. */
  readonly screenshot: (
    options?: { readonly device?: string | undefined; readonly head?: number | undefined }
  ) => Effect.Effect<Uint8Array, MachineCommandError | QMPDecodeError | Display.ScreenshotUnavailable>
  /** Types text on the guest's keyboard (US layout), in order. See `Display.sendKeys`. */
  readonly sendKeys: (
    text: string,
    options?: Display.KeyOptions
  ) => Effect.Effect<void, MachineCommandError | QMPDecodeError | Display.KeyUnmappable | Display.KeyboardUnavailable>
  /** Presses one combination such as `ctrl-alt-delete`. */
  readonly sendKey: (
    combination: string,
    options?: Display.KeyOptions
  ) => Effect.Effect<void, MachineCommandError | QMPDecodeError | Display.KeyUnmappable | Display.KeyboardUnavailable>
}

/** A launched machine, as a service (see `layer`). */
export class Machine extends Context.Tag("qemu-machine/Machine")<Machine, MachineService>() {}

/** Errors `launch` can end in. */
export type LaunchError = VMLaunchFailure | SocketPathTooLong

/**
 * Launches QEMU and negotiates QMP; the scope's end shuts it down (see
 * `MachineService.shutdown`) and removes every file it made but the kept
 * logs. On failure, everything is already cleaned up and the error carries
 * the command line, the exit status and QEMU's output. `launchTimeout`
 * bounds the whole launch.
 */
export const launch = (config: MachineConfig = {}): Effect.Effect<MachineService, LaunchError, Scope.Scope> =>
  Effect.gen(function*() {
    if (config.accel === "auto") {
      const kvm = yield* kvmVerdict(config.binary ?? DEFAULT_BINARY)
      return yield* launch({ ...config, accel: kvm ? "kvm" : "tcg" })
    }
    const outer = yield* Effect.scope
    // Everything the machine holds lives in its own scope; shutdown closes it early.
    const machineScope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    const started = yield* Launch.start(config, machineScope)
    // Built while QEMU may still be answering; the handshake is waited for last (docs/performance.md).
    const { finalizer, lifecycle } = Lifecycle.make(started, machineScope, config.shutdownTimeout)
    const machine = running(started, lifecycle)
    yield* started.ready
    yield* Scope.addFinalizer(outer, finalizer)
    return machine
  }).pipe(withNodeDefaults)

const running = (started: Launch.Started, lifecycle: Lifecycle.Lifecycle): MachineService => {
  const { child } = started
  const recorded = Recording.recordedBy(Option.getOrUndefined(started.recorder))
  const stateError = (operation: string, detail: string) =>
    recorded(Effect.flatMap(lifecycle.state, (state) => new MachineStateError({ operation, state, detail })))
  const client = Option.map(started.qmp, (c) => Recording.qmp(c, recorded))
  const qmp: Effect.Effect<QmpClient.QmpClientService, MachineStateError> = Option.match(client, {
    onNone: () => stateError("qmp", "the machine was launched without a QMP monitor"),
    onSome: (c) =>
      Effect.flatMap(lifecycle.state, (state) => state === "running" ? Effect.succeed(c) : stateError("qmp", "QMP is closed"))
  })
  const console = Option.map(started.console, (c) => Recording.console(c, recorded))
  return {
    name: started.name,
    command: started.command,
    pid: child.pid,
    tempDir: started.tempDir,
    logDir: started.logDir,
    logPath: started.logPath,
    qmp,
    console: Option.match(console, {
      onNone: () => stateError("console", "the machine was launched without a console"),
      onSome: Effect.succeed
    }),
    guestAgent: Option.match(started.guestAgent, {
      onNone: () => stateError("guestAgent", "the machine was launched without a guest agent channel"),
      onSome: Effect.succeed
    }),
    ...qmpCalls(qmp, Effect.succeed(started.tempDir)),
    state: lifecycle.state,
    isRunning: Effect.map(child.status, Option.isNone),
    exitCode: Effect.map(child.status, Option.flatMap((s) => Option.fromNullable(s.exitCode))),
    exitStatus: child.status,
    log: lifecycle.log,
    shutdown: (options) => recorded(lifecycle.shutdown(options)),
    kill: recorded(lifecycle.kill),
    wait: (timeout) => recorded(lifecycle.wait(timeout))
  }
}

/** What a machine offers through its QMP session, launched or attached. */
type QmpCalls = Pick<
  MachineService,
  "execute" | "executeRaw" | "executeAndWait" | "forwardedPort" | "screenshot" | "sendKeys" | "sendKey"
>

const qmpCalls = (
  qmp: Effect.Effect<QmpClient.QmpClientService, MachineStateError>,
  /** A directory QEMU can write a screenshot to, for the scope. */
  screenshotDirectory: Effect.Effect<string, Display.ScreenshotUnavailable, Scope.Scope | FileSystem.FileSystem>
): QmpCalls => {
  const prepare = (args: Arguments | undefined, options: MachineExecuteOptions | undefined) =>
    args !== undefined && options?.convertKeys === true ? convertKeys(args) : args
  return {
    // One implementation behind both overloads: typed names differ only in their static types.
    execute: ((command: string, args?: Arguments, options?: MachineExecuteOptions) =>
      Effect.flatMap(qmp, (client) => client.execute(command, prepare(args, options), options))) as MachineService[
        "execute"
      ],
    executeRaw: (command, args, options) =>
      Effect.flatMap(qmp, (client) => client.executeRaw(command, prepare(args, options), options)),
    executeAndWait: ((command: string, args: Arguments | undefined, filters: string, options?: QmpClient.ExecuteOptions) =>
      Effect.flatMap(qmp, (client) => client.executeAndWait(command, args, filters, options))) as MachineService[
        "executeAndWait"
      ],
    forwardedPort: (guestPort, options) => Effect.flatMap(qmp, (client) => UserNetwork.forwardedPort(client, guestPort, options)),
    screenshot: (options) =>
      Effect.flatMap(qmp, (client) =>
        Effect.scoped(Effect.flatMap(screenshotDirectory, (directory) => Display.screenshot(client, { ...options, directory }))))
        .pipe(withNodeDefaults),
    sendKeys: (text, options) => Effect.flatMap(qmp, (client) => Display.sendKeys(client, text, options)),
    sendKey: (combination, options) => Effect.flatMap(qmp, (client) => Display.sendKey(client, combination, options))
  }
}

/**
 * A QEMU this process did not start, reached through its QMP socket: the
 * same calls as a launched machine, minus what needs the process as a child
 * (exit status, log). See `Machine.attach`.
 */
export interface AttachedMachineService extends QmpCalls, Attach.Attached {}

/**
 * Attaches to a running QEMU through its QMP monitor socket (and, if given,
 * its console and guest agent sockets). QEMU sends each new client a fresh
 * greeting and serves one client at a time (while another is attached, this
 * times out waiting for the greeting); events from before are not replayed.
 * The scope's end detaches, or shuts QEMU down with `onClose: "shutdown"`.
 */
export const attach = (config: AttachConfig): Effect.Effect<AttachedMachineService, Attach.AttachError, Scope.Scope> =>
  Effect.map(Attach.attach(config), (attached) => ({
    ...attached,
    // QEMU writes the file: a private dir of our own, which a QEMU running as another user cannot reach.
    ...qmpCalls(
      attached.qmp,
      Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "qemu-machine-screenshot-" })).pipe(
        Effect.mapError((cause) => new Display.ScreenshotUnavailable({ detail: `no temp dir for it: ${cause.message}`, cause }))
      )
    )
  })).pipe(withNodeDefaults)

/** Options of `kvmRuns`. */
export interface KvmProbeOptions {
  /** The QEMU binary. Default `qemu-system-x86_64`. */
  readonly binary?: string | undefined
  /** How long the guest may take to print its banner. Default 5 s. */
  readonly deadline?: Duration.DurationInput | undefined
}

/** What `kvmProbe` found. */
export interface KvmVerdict {
  readonly runs: boolean
  /** Why not, when it does not: `no output within 5s`, or the launch's failure. */
  readonly detail: string
}

/**
 * Whether KVM really runs guests here: boots a 512-byte guest under
 * `-accel kvm` and waits for its banner. Never decided from `/dev/kvm` or
 * `query-kvm`: on some hosts both say yes and a KVM guest executes nothing.
 * `accel: "auto"` takes the verdict for this binary from here when it has
 * none yet: a yes always, a no when `deadline` was at least the default.
 */
export const kvmProbe = (options: KvmProbeOptions = {}): Effect.Effect<KvmVerdict> => {
  const deadline = Duration.decode(options.deadline ?? KVM_PROBE_DEADLINE)
  return Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "qemu-machine-kvm-" })
    const image = path.join(dir, "probe.img")
    yield* fs.writeFile(image, EchoImage.image())
    const vm = yield* launch({
      binary: options.binary,
      machineType: "pc,graphics=off",
      accel: "kvm",
      args: ["-nic", "none", "-m", "16", "-drive", `file=${escapeOptionValue(image)},format=raw,if=ide`],
      console: {},
      baseTempDir: dir,
      shutdownTimeout: Duration.seconds(5),
      flightRecorder: false
    })
    yield* (yield* vm.console).waitFor(EchoImage.BANNER, { timeout: deadline })
    return { runs: true, detail: "a guest runs under -accel kvm" }
  })).pipe(
    Effect.catchAll((error) =>
      Effect.succeed({
        runs: false,
        detail: error._tag === "ConsoleTimeout" ? `no output within ${Duration.format(deadline)}` : error.message.split("\n")[0]!
      })
    ),
    // `accel: "auto"` takes this verdict too: a yes always, a no only from a deadline at least its own.
    Effect.tap((verdict) =>
      verdict.runs || Duration.greaterThanOrEqualTo(deadline, KVM_PROBE_DEADLINE)
        ? rememberKvmVerdict(options.binary ?? DEFAULT_BINARY, verdict.runs)
        : Effect.void
    ),
    withNodeDefaults,
    Tracing.withSpan("Machine.kvmProbe")
  )
}

const KVM_PROBE_DEADLINE = Duration.seconds(5)

/** `kvmProbe`'s yes or no. */
export const kvmRuns = (options: KvmProbeOptions = {}): Effect.Effect<boolean> =>
  Effect.map(kvmProbe(options), (verdict) => verdict.runs)

/**
 * `kvmRuns` once per binary and process, for `accel: "auto"` (concurrent
 * launches share the probe; a `kvmProbe` of the user's fills it too).
 */
const kvmVerdicts = new Map<string, Deferred.Deferred<boolean>>()
const rememberKvmVerdict = (binary: string, runs: boolean) =>
  Effect.sync(() => {
    if (kvmVerdicts.has(binary)) return
    const verdict = Deferred.unsafeMake<boolean>(FiberId.none)
    Deferred.unsafeDone(verdict, Exit.succeed(runs))
    kvmVerdicts.set(binary, verdict)
  })
const kvmVerdict = (binary: string): Effect.Effect<boolean> =>
  Effect.suspend(() => {
    const known = kvmVerdicts.get(binary)
    // A probe interrupted before its verdict leaves no verdict: whoever waited asks again.
    if (known !== undefined) return Deferred.await(known).pipe(Effect.catchAllCause(() => kvmVerdict(binary)))
    const verdict = Deferred.unsafeMake<boolean>(FiberId.none)
    kvmVerdicts.set(binary, verdict)
    return Effect.flatMap(kvmRuns({ binary }), (runs) => Effect.as(Deferred.succeed(verdict, runs), runs)).pipe(
      Effect.onInterrupt(() => Effect.zipRight(Effect.sync(() => kvmVerdicts.delete(binary)), Deferred.interrupt(verdict)))
    )
  })

/** A machine that lives as long as the layer: for a test suite that shares one VM. */
export const layer = (config: MachineConfig = {}): Layer.Layer<Machine, LaunchError> =>
  Layer.scoped(Machine, launch(config))

/** Re-exported for convenience. */
export type { AttachConfig, MachineConfig } from "./MachineConfig.js"
export type { AttachError } from "./internal/attach.js"
