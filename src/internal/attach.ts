/**
 * `Machine.attach`: a QEMU this process did not start, reached through its
 * QMP socket (a supervisor re-adopting its VMs after a crash, a script
 * inspecting a running VM). QEMU greets each new client afresh and serves one
 * at a time; events from before the attach are not replayed.
 *
 * What needs the process is limited: its pid is known only when the host can
 * tell who is at the other end of the monitor socket (SO_PEERCRED for unix,
 * the owner of the peer socket for TCP), its exit status never (it is not our
 * child). So shutdown is `quit`, then the monitor's end (QEMU closes it as it
 * exits), then, with a pid, the process's disappearance from /proc.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { Socket } from "node:net"
import * as ConsoleSocket from "../ConsoleSocket.js"
import {
  AbnormalShutdown,
  type ConsoleClosed,
  type GuestAgentError,
  MachineStateError,
  QMPConnectError,
  type TempFilesError
} from "../Errors.js"
import * as GuestAgent from "../GuestAgent.js"
import type { AttachConfig } from "../MachineConfig.js"
import * as QmpClient from "../QmpClient.js"
import type { State } from "./lifecycle.js"
import { peerPid } from "./peer.js"
import * as Recorder from "./recorder.js"
import * as Recording from "./recording.js"
import { redactArgv } from "./redact.js"
import * as Procfs from "./procfs.js"
import * as Tracing from "./tracing.js"
import * as Transport from "./transport.js"


/** Errors `attach` can end in. */
export type AttachError = QMPConnectError | QmpClient.SessionError | ConsoleClosed | TempFilesError | GuestAgentError

/** An attached machine, before the QMP conveniences shared with launched machines are added (`Machine.AttachedMachineService`). */
export interface Attached {
  readonly name: string
  /** The monitor's address, `unix:PATH` or `tcp:HOST:PORT`. */
  readonly address: string
  /** QEMU's pid, when this host can tell who holds the other end of the monitor socket. */
  readonly pid: Option.Option<number>
  /** Its command line from /proc (empty without a pid). */
  readonly command: ReadonlyArray<string>
  readonly qmp: Effect.Effect<QmpClient.QmpClientService, MachineStateError>
  readonly console: Effect.Effect<ConsoleSocket.ConsoleSocketService, MachineStateError>
  readonly guestAgent: Effect.Effect<GuestAgent.GuestAgentService, MachineStateError>
  readonly state: Effect.Effect<State>
  /** The monitor is connected (and, with a pid, the process alive). */
  readonly isRunning: Effect.Effect<boolean>
  /**
   * `quit`, then waits for the monitor to close and (with a pid) the process
   * to go; past the timeout, SIGKILL if the pid is known, and
   * `AbnormalShutdown`. `hard` needs the pid.
   */
  readonly shutdown: (options?: {
    readonly hard?: boolean | undefined
    readonly timeout?: Duration.DurationInput | undefined
  }) => Effect.Effect<void, AbnormalShutdown | MachineStateError>
  /** SIGKILL (needs the pid: `MachineStateError` otherwise). */
  readonly kill: Effect.Effect<void, AbnormalShutdown | MachineStateError>
  /** Waits for QEMU to exit by itself (the monitor's end, then the pid's). */
  readonly wait: (timeout?: Duration.DurationInput) => Effect.Effect<void, AbnormalShutdown>
  /** Closes this process's connections and leaves QEMU running (what the scope's end does by default). */
  readonly detach: Effect.Effect<void>
}

const DEFAULT_TIMEOUT = Duration.seconds(30)


/**
 * Polls /proc until the process is gone (it is not our child: no exit event
 * reaches us). A later process given its pid does not keep it waiting.
 */
const processGone = (identity: Procfs.ProcessIdentity) =>
  Effect.suspend(() => Effect.succeed(!Procfs.isSameAlive(identity))).pipe(
    Effect.repeat({ until: (gone) => gone, schedule: Schedule.exponential("1 millis", 2).pipe(Schedule.upTo("50 millis")) }),
    Effect.asVoid
  )

/** Connects to the monitor (and console, agent); the scope's end detaches or shuts down, as `onClose` says. */
export const attach = (config: AttachConfig): Effect.Effect<Attached, AttachError, Scope.Scope> =>
  Effect.gen(function*() {
    const outer = yield* Effect.scope
    const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    const address = Transport.addressLabel(config.monitor)
    const name = config.name ?? address
    const connectTimeout = config.connectTimeout ?? DEFAULT_TIMEOUT
    const transport = yield* Transport.connect(config.monitor, address, connectTimeout).pipe(
      Effect.mapError((e) => new QMPConnectError({ address, detail: e.detail, cause: e.error })),
      Scope.extend(scope)
    )
    // Filled in once QEMU has greeted us; a record reads it when it is taken.
    const identity: { machine: string; pid: number | null; command: ReadonlyArray<string> } = { machine: name, pid: null, command: [] }
    let consoleForRecord: ConsoleSocket.ConsoleSocketService | undefined
    const recorder = config.flightRecorder === false ? undefined : Recorder.make(
      identity,
      (consoleBytes) =>
        Effect.map(
          consoleForRecord === undefined ? Effect.succeed("") : consoleForRecord.recent,
          (text) => ({ console: text.slice(-consoleBytes), log: "" })
        ),
      config.flightRecorder
    )
    const client = yield* QmpClient.fromTransport(transport, {
      ...config.qmp,
      onTraffic: Recorder.withHook(recorder, config.qmp?.onTraffic),
      // One client at a time: while another holds the monitor, no greeting comes.
      greetingTimeout: config.qmp?.greetingTimeout ?? connectTimeout,
      spanAttributes: { ...config.qmp?.spanAttributes, "qemu.machine": name }
    }).pipe(Scope.extend(scope))
    // After the greeting: until QEMU accepts, the peer socket is in no process's descriptor table.
    const pid = Option.fromNullable(peerPid(transport.duplex as Socket))
    // Its start time with it: what the waits and the kill below check, so that they never take another
    // process that got the pid after QEMU exited for QEMU.
    const target = Option.map(pid, Procfs.identify)
    // Exact, as a launched machine's `command`; the flight record has it redacted.
    const command = Option.match(pid, { onNone: () => [], onSome: (p) => Procfs.commandLine(p) ?? [] })
    identity.pid = Option.getOrNull(pid)
    identity.command = redactArgv(command)
    const console = config.console === undefined
      ? Option.none()
      : Option.some(yield* ConsoleSocket.connect(config.console.path).pipe(Scope.extend(scope)))
    consoleForRecord = Option.getOrUndefined(console)
    const recorded = Recording.recordedBy(recorder)
    const guestAgent = config.guestAgent === undefined
      ? Option.none()
      : Option.some(yield* GuestAgent.connect(config.guestAgent.path).pipe(Scope.extend(scope)))

    let state: State = "running"
    const stopped = yield* Deferred.make<void>()
    const stateError = (operation: string, detail: string): Effect.Effect<never, MachineStateError> =>
      recorded(Effect.suspend(() => Effect.fail(new MachineStateError({ operation, state, detail }))))
    const closeAll = Effect.suspend(() => {
      state = "stopped"
      return Effect.zipRight(Scope.close(scope, Exit.void), Deferred.succeed(stopped, undefined))
    })

    /** QEMU's end as we can see it: the monitor's end, then (with a pid) the process's. */
    const exited = Effect.zipRight(client.awaitDisconnect, Option.match(target, { onNone: () => Effect.void, onSome: processGone }))
    /** `first` (e.g. a quit), then `exited`; AbnormalShutdown after `timeout`. */
    const awaitExit = (timeout: Duration.Duration, first: Effect.Effect<void> = Effect.void) =>
      Effect.zipRight(first, exited).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new AbnormalShutdown({
              detail: `${name} did not exit within ${Duration.format(timeout)}`,
              exitCode: null,
              signal: null
            })
        })
      )

    const hardKill = (detail: string): Effect.Effect<void, AbnormalShutdown | MachineStateError> =>
      Option.match(target, {
        onNone: () => stateError("kill", `${detail}, and the pid of ${name} is unknown (a monitor on another host?)`),
        onSome: (identity) =>
          Effect.zipRight(
            // Not sent if QEMU is gone (its pid may be another process's by now), or not ours to signal:
            // the wait below tells which.
            Effect.sync(() => Procfs.signalIfSame(identity, "SIGKILL")),
            Effect.timeoutFail(processGone(identity), {
              duration: Duration.seconds(10),
              onTimeout: () =>
                new AbnormalShutdown({ detail: `pid ${identity.pid} did not exit after SIGKILL`, exitCode: null, signal: "SIGKILL" })
            })
          )
      })

    const shutdown: Attached["shutdown"] = (options) =>
      Effect.suspend(() => {
        if (state !== "running") return state === "stopped" ? Effect.void : Effect.asVoid(Deferred.await(stopped))
        state = "shutting-down"
        const timeout = Duration.decode(options?.timeout ?? config.shutdownTimeout ?? DEFAULT_TIMEOUT)
        // The quit's reply counts against the timeout too: a stopped QEMU never sends it.
        const soft = awaitExit(timeout, Effect.asVoid(Effect.ignore(client.executeRaw("quit"))))
        const hard = Effect.zipRight(hardKill("a hard shutdown was asked for"), Effect.ignore(awaitExit(timeout)))
        return (options?.hard === true ? hard : soft.pipe(
          Effect.catchTag("AbnormalShutdown", (error) =>
            Effect.zipRight(
              Effect.ignore(hardKill("QEMU ignored quit")),
              Effect.fail(error)
            ))
        )).pipe(Effect.ensuring(closeAll))
      }).pipe(Tracing.withSpan("Machine.shutdown", { attributes: { "qemu.machine": name } }))

    const kill: Attached["kill"] = Effect.suspend(() =>
      state === "stopped"
        ? Effect.void
        : Effect.zipRight(
          hardKill("kill was asked for"),
          Effect.ignore(awaitExit(Duration.seconds(10)))
        ).pipe(Effect.zipRight(closeAll))
    )

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() =>
        state === "stopped"
          ? Effect.void
          : config.onClose === "shutdown"
          ? shutdown().pipe(Effect.catchAll((error) => Effect.logWarning(`${name}: ${error.message}`)))
          : closeAll
      )
    )

    const recordedClient = Recording.qmp(client, recorded)
    const recordedConsole = Option.map(console, (c) => Recording.console(c, recorded))
    return {
      name,
      address,
      pid,
      command,
      qmp: Effect.suspend(() => state === "running" ? Effect.succeed(recordedClient) : stateError("qmp", "QMP is closed")),
      console: Option.match(recordedConsole, {
        onNone: () => stateError("console", "attached without a console"),
        onSome: Effect.succeed
      }),
      guestAgent: Option.match(guestAgent, {
        onNone: () => stateError("guestAgent", "attached without a guest agent socket"),
        onSome: Effect.succeed
      }),
      state: Effect.sync(() => state),
      isRunning: Effect.map(client.isConnected, (connected) =>
        connected && Option.match(target, { onNone: () => true, onSome: Procfs.isSameAlive })),
      shutdown: (options) => recorded(shutdown(options)),
      kill: recorded(kill),
      wait: (timeout) =>
        recorded(Effect.zipRight(
          timeout === undefined ? exited : awaitExit(Duration.decode(timeout)),
          closeAll
        )),
      detach: closeAll
    } satisfies Attached
  }).pipe(Tracing.withSpan("Machine.attach", { attributes: { "qemu.monitor": Transport.addressLabel(config.monitor) } }))
