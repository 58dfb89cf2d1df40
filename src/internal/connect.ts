/**
 * A launch after the spawn (`_post_launch` of QEMU's Python `QEMUMachine`):
 * the QMP handshake, the console and the guest agent's channel, each in the
 * machine's scope, and what a failure here reports: QEMU's exit status if it
 * ended, else it is killed, with its output either way. See `launch.ts` for
 * the steps before, and `docs/lifecycle.md`.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as ConsoleSocket from "../ConsoleSocket.js"
import * as GuestAgent from "../GuestAgent.js"
import { QMPSchemaDrift, VMLaunchFailure } from "../Errors.js"
import type { MachineConfig } from "../MachineConfig.js"
import type * as QemuProcess from "../QemuProcess.js"
import * as QmpClient from "../QmpClient.js"
import type * as Channels from "./channels.js"
import * as Deadline from "./deadline.js"
import type * as Files from "./files.js"
import type * as PrivateDir from "./privateDir.js"
import * as Recorder from "./recorder.js"
import { redactArgv } from "./redact.js"
import type { Started } from "./started.js"
import * as Tracing from "./tracing.js"

/** `launchTimeout` when the config sets none. */
export const DEFAULT_LAUNCH_TIMEOUT = Duration.seconds(30)
/** How long a QEMU that closed its monitor during the launch gets to report its exit status. */
const EXIT_GRACE = Duration.seconds(2)
/** How long a killed QEMU gets to be gone. */
const HARD_KILL_TIMEOUT = Duration.seconds(60)
/** How much of QEMU's output a launch failure carries. */
export const OUTPUT_TAIL_BYTES = 64 * 1024
/** How much of QEMU's output `readLog` reads: a flooding QEMU's log can be any size. */
const MAX_LOG = 16 * 1024 * 1024

/**
 * A failed launch's QEMU: SIGKILL to its tree, then waited for (at most
 * `HARD_KILL_TIMEOUT`), so that its log is complete when read.
 */
export const killForFailure = (child: QemuProcess.ChildHandle): Effect.Effect<void> =>
  Effect.zipRight(child.kill("SIGKILL"), Effect.ignore(child.waitTree(HARD_KILL_TIMEOUT)))

/** A launch failure's cause when `launchTimeout` ran out. */
export const timeoutCause = (timeout: Duration.Duration) => `the launch did not complete within ${Duration.format(timeout)}`

/** QEMU exited before the launch completed. */
class ExitedEarly extends Data.TaggedError("ExitedEarly")<{ readonly status: QemuProcess.ExitStatus }> {}

/**
 * After spawn: the QMP session, the console and the agent's channel, each
 * opening racing QEMU's exit. With a deadline, the QMP handshake is left to
 * `Started.ready`, which `launch` waits for last: what it builds meanwhile
 * is built while QEMU starts, not after its answer (docs/performance.md).
 * Under the launch-wide timer it is waited for here, inside the timer.
 */
export const connect = (
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
  machineScope: Scope.CloseableScope,
  deadline: Deadline.Deadline | undefined
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
          : cause instanceof QMPSchemaDrift || (deadline !== undefined && Deadline.passed(deadline))
          ? Option.none()
          : yield* child.wait(deadline === undefined ? EXIT_GRACE : Duration.min(EXIT_GRACE, Deadline.remaining(deadline)))
            .pipe(Effect.option)
        // With a deadline, a wait it cut short (the handshake's, an accept's, the grace above) is the launch's timeout.
        const timedOut = Option.isNone(status) && !(cause instanceof QMPSchemaDrift) && deadline !== undefined &&
            Deadline.passed(deadline)
          ? deadline.timeout
          : undefined
        if (Option.isNone(status)) yield* killForFailure(child)
        const failure = VMLaunchFailure.fromArgv({
          reason: Option.isSome(status)
            ? "Exited"
            : timedOut !== undefined
            ? "Timeout"
            : cause instanceof QMPSchemaDrift
            ? "SchemaDrift"
            : "Handshake",
          argv: command,
          exitCode: Option.isSome(status) ? status.value.exitCode : null,
          signal: Option.isSome(status) ? status.value.signal : null,
          output: yield* logFile.readTail(OUTPUT_TAIL_BYTES),
          cause: cause instanceof ExitedEarly
            ? "QEMU exited during the launch"
            : timedOut !== undefined
            ? timeoutCause(timedOut)
            : cause
        })
        return yield* Effect.fail(recorder === undefined ? failure : yield* recorder.attach(failure))
      })
    /** A step after spawn: into the machine's scope, its failure reported with QEMU's status and output. */
    const afterSpawnStep = <A, E>(
      step: Effect.Effect<A, E, Scope.Scope | FileSystem.FileSystem>,
      span: string,
      scope: Scope.Scope = machineScope
    ) => step.pipe(Scope.extend(scope), Effect.catchAll(afterSpawn), Tracing.withSpan(span))
    /** How long a wait may take: what is left of the deadline, or the whole `launchTimeout` under a launch-wide timer. */
    const waitLimit = () =>
      deadline === undefined ? Duration.decode(config.launchTimeout ?? DEFAULT_LAUNCH_TIMEOUT) : Deadline.remaining(deadline)
    /**
     * Opens a channel. Accepting QEMU's connection, or connecting to its
     * socket, would wait for a peer that is gone if QEMU exits: that races its
     * exit. A socket pair needs no race: QEMU's exit closes its end, and the
     * session or console sees the end of the stream.
     */
    const open = (channel: Channels.Channel) =>
      channel.endpoint._tag === "Fd" ? channel.open(child, waitLimit()) : Effect.raceFirst(
        channel.open(child, waitLimit()),
        Effect.flatMap(child.awaitExit, (status) => Effect.fail(new ExitedEarly({ status })))
      )

    const qmpOptions = config.qmp === false ? {} : config.qmp ?? {}
    // A scope of its own inside the machine's, so that a shutdown can release it early.
    const qmpScope = yield* Scope.fork(machineScope, ExecutionStrategy.sequential)
    // Under the launch-wide timer, no timer of its own unless the config sets one.
    const greetingTimeout = Duration.decode(qmpOptions.greetingTimeout ?? Duration.infinity)
    const sessionOptions: QmpClient.QmpClientOptions = {
      ...qmpOptions,
      greetingTimeout,
      onTraffic: Recorder.withHook(recorder, qmpOptions.onTraffic),
      spanAttributes: { "qemu.machine": name, "qemu.pid": child.pid, ...qmpOptions.spanAttributes }
    }
    // With a deadline and no tracer to see spans, `launch` waits for the handshake last (`Started.ready`): what is
    // left of the deadline, or the config's greeting timeout if shorter (a longer one must not stretch
    // `launchTimeout`). Traced, it is waited for here, in the `launch.qmp` span, as under the launch-wide timer.
    const deferred = deadline !== undefined && (yield* Effect.tracer) === Tracing.builtIn
    /** How long the handshake may take, from when it is waited for. */
    const handshakeLimit = () =>
      deadline === undefined ? greetingTimeout : Duration.min(Deadline.remaining(deadline), greetingTimeout)
    let handshake: Effect.Effect<void, QmpClient.SessionError> | undefined
    const qmp = monitor === undefined ? Option.none<QmpClient.QmpClientService>() : yield* afterSpawnStep(
      open(monitor).pipe(
        Effect.flatMap((transport) =>
          deferred
            ? Effect.map(QmpClient.start(transport, sessionOptions), ({ client, ready }) => {
              handshake = Effect.suspend(() => ready(handshakeLimit()))
              return client
            })
            : QmpClient.fromTransport(transport, { ...sessionOptions, greetingTimeout: handshakeLimit() })
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
      ready: handshake === undefined
        ? Effect.void
        : handshake.pipe(Effect.catchAll(afterSpawn), Effect.onError(() => Scope.close(machineScope, Exit.void))),
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
