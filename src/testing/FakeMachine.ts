/**
 * A `Machine` without QEMU, for unit tests of code written against the
 * `Machine` service. The real `Machine.launch` runs, with a fake
 * `QemuProcess`: its QMP monitor is a `FakeQmp` server (scriptable per
 * command, able to emit events and misbehave), its console a stream the test
 * writes guest output into, and its exit is scriptable (`quit` exits 0 by
 * default; `exit` and `kill` end it as a real process would). Every shutdown
 * path of the real machine runs against it.
 *
 * ```ts
 * it.scoped("pauses the guest", () =>
 *   Effect.gen(function*() {
 *     const vm = yield* Machine.Machine
 *     yield* pause                                   // code under test
 *     const fake = yield* FakeMachine.FakeMachine
 *     expect((yield* fake.qmp.received).map((c) => c.execute)).toContain("stop")
 *   }).pipe(Effect.provide(FakeMachine.layer())))
 * ```
 *
 * @module
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Net from "node:net"
import { Duplex, PassThrough } from "node:stream"
import * as Machine from "../Machine.js"
import type { MachineConfig } from "../MachineConfig.js"
import * as QemuProcess from "../QemuProcess.js"
import * as FakeGuestAgent from "./FakeGuestAgent.js"
import * as FakeQmp from "./FakeQmp.js"

/** How the fake QEMU behaves besides its monitor. */
export interface FakeMachineScript<C = {}> extends FakeQmp.FakeQmpScript<C> {
  /** What a `quit` does: exit with this code once replied (default 0), or `"ignore"` (reply, keep running). */
  readonly onQuit?: { readonly exitCode: number } | "ignore" | undefined
  /** The guest agent behind a `guestAgent` channel; without it the channel is silent (no agent running). */
  readonly guestAgent?: FakeGuestAgent.FakeGuestAgentScript | undefined
}

/** Control over the fake QEMU behind a `FakeMachine.layer`. */
export interface FakeMachineService {
  /** The fake monitor: commands received, events to emit, handlers to change. */
  readonly qmp: FakeQmp.FakeQmpService
  /** Writes guest output to the console (needs `console` in the machine's config). */
  readonly guestWrite: (data: string | Uint8Array) => Effect.Effect<void>
  /** What the machine wrote to the console, as it comes. */
  readonly guestInput: Stream.Stream<Uint8Array>
  /** The fake QEMU exits by itself (a guest power-off): with a code, or killed by a signal. */
  readonly exit: (status: QemuProcess.ExitStatus) => Effect.Effect<void>
  /** Signals the fake QEMU received, in order. */
  readonly signals: Effect.Effect<ReadonlyArray<NodeJS.Signals>>
  /** The fake guest agent, when the script has one. */
  readonly guestAgent: Option.Option<FakeGuestAgent.FakeGuestAgentService>
}

/** The fake QEMU's control service. */
export class FakeMachine extends Context.Tag("qemu-machine/testing/FakeMachine")<FakeMachine, FakeMachineService>() {}

let fakePids = 0

/** The slot a `-chardev socket,id=ID,fd=N` gets: N - 3. */
const slotOf = (command: ReadonlyArray<string>, id: string): number | undefined => {
  const chardev = command.find((arg) => arg.startsWith(`socket,id=${id},fd=`))
  return chardev === undefined ? undefined : Number(/fd=(\d+)/.exec(chardev)![1]) - 3
}

/** A fake `QemuProcess` whose one process is the fake QEMU, and its control. */
const makeFake = <C>(script: FakeMachineScript<C>) =>
  Effect.gen(function*() {
    const exited = yield* Deferred.make<QemuProcess.ExitStatus>()
    const exit = (status: QemuProcess.ExitStatus) => Deferred.succeed(exited, status).pipe(Effect.asVoid)
    // `quit` as QEMU does it (SHUTDOWN, the reply, the monitor closed), then the exit; or ignored.
    const onQuit = script.onQuit ?? { exitCode: 0 }
    const shutdownEvent = { guest: false, reason: "host-qmp-quit" }
    const quit: FakeQmp.CommandHandler = (_args, context) =>
      onQuit === "ignore"
        ? Effect.as(context.emit("SHUTDOWN", shutdownEvent), FakeQmp.reply())
        : context.emit("SHUTDOWN", shutdownEvent).pipe(
          Effect.zipRight(context.send(`${JSON.stringify({ return: {}, id: context.command.id })}\n`)),
          Effect.zipRight(exit({ exitCode: onQuit.exitCode, signal: null })),
          Effect.as(FakeQmp.disconnect)
        )
    // The script's own handlers win, quit included.
    const commands: Readonly<Record<string, FakeQmp.CommandHandler>> = { quit, ...script.commands }
    const qmp = yield* FakeQmp.make({ ...script, commands })
    const agent = script.guestAgent === undefined ? undefined : yield* FakeGuestAgent.make(script.guestAgent)
    const guestOut = new PassThrough()
    const guestIn = new PassThrough()
    const signals: Array<NodeJS.Signals> = []

    const spawn: QemuProcess.QemuProcessService["spawn"] = (options) =>
      Effect.gen(function*() {
        const monitorSlot = slotOf(options.command, "mon")
        const consoleSlot = slotOf(options.command, "console")
        const agentSlot = slotOf(options.command, "qga0")
        const connectTo = (path: string) =>
          Effect.async<Net.Socket>((resume) => {
            const socket = Net.createConnection({ path }, () => resume(Effect.succeed(socket)))
            socket.on("error", () => {})
          })
        const monitor = monitorSlot === undefined ? undefined : yield* connectTo(qmp.path)
        const agentStream = agentSlot === undefined
          ? undefined
          : agent === undefined
          ? new Duplex({ read: () => {}, write: (_chunk, _encoding, done) => done() })
          : yield* connectTo(agent.path)
        const streams = (options.extraFds ?? []).map((_, slot) =>
          slot === monitorSlot
            ? monitor
            : slot === consoleSlot
            ? Duplex.from({ readable: guestOut, writable: guestIn })
            : slot === agentSlot
            ? agentStream
            : undefined
        )
        // A process that ends closes its end of the monitor (after what it wrote), and of the console.
        yield* Effect.forkDaemon(Effect.zipRight(Deferred.await(exited), Effect.zipRight(qmp.disconnect, Effect.sync(() => guestOut.end()))))
        yield* Effect.addFinalizer(() =>
          Effect.zipRight(
            Effect.ignore(exit({ exitCode: null, signal: "SIGKILL" })),
            Effect.sync(() => streams.forEach((stream) => stream?.destroy()))
          )
        )
        const handle: QemuProcess.ChildHandle = {
          pid: 4_000_000 + ++fakePids,
          command: options.command,
          streams,
          status: Deferred.poll(exited).pipe(Effect.flatMap(Option.match({
            onNone: () => Effect.succeedNone,
            onSome: Effect.asSome
          }))),
          awaitExit: Deferred.await(exited),
          wait: (timeout) => Deferred.await(exited).pipe(Effect.interruptible, Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new QemuProcess.WaitTimeout(handle.pid, Duration.toMillis(timeout))
          })),
          waitTree: (timeout) => handle.wait(timeout),
          kill: (signal = "SIGKILL") =>
            Effect.suspend(() => {
              signals.push(signal)
              return signal === "SIGSTOP" ? Effect.void : exit({ exitCode: null, signal })
            })
        }
        return handle
      })

    const control: FakeMachineService = {
      qmp,
      guestWrite: (data) => Effect.sync(() => void guestOut.write(data)),
      guestInput: Stream.fromAsyncIterable(guestIn, () => undefined as never),
      exit,
      signals: Effect.sync(() => signals.slice()),
      guestAgent: Option.fromNullable(agent)
    }
    return { spawner: { spawn } satisfies QemuProcess.QemuProcessService, control }
  })

/**
 * A `Machine` launched from `config` against a fake QEMU, and the
 * `FakeMachine` that drives it. The machine's scope is the layer's.
 */
export const layer = <C = {}>(
  config: MachineConfig = {},
  script: FakeMachineScript<C> = {}
): Layer.Layer<Machine.Machine | FakeMachine, Machine.LaunchError> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const { control, spawner } = yield* makeFake(script)
      const machine = yield* Machine.launch({ dieWithParent: false, ...config }).pipe(
        Effect.provideService(QemuProcess.QemuProcess, spawner)
      )
      return Context.make(Machine.Machine, machine).pipe(Context.add(FakeMachine, control))
    })
  )

