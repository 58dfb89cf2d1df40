/**
 * `qemu-machine run -- <qemu args>`: launch, stream the console to stdout,
 * print QMP events to stderr, Ctrl-C for a clean shutdown (a second Ctrl-C
 * kills), and exit with QEMU's exit code.
 */
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as NodeOs from "node:os"
import { formatCommand } from "../internal/redact.js"
import * as Machine from "../Machine.js"
import type { CommandSpec, Parsed } from "./args.js"
import { qemuOption, qmpLogOption, setExitCode, track, trafficLog } from "./common.js"

export const spec: CommandSpec = {
  name: "run",
  summary: "launch QEMU with the given arguments until it exits or Ctrl-C",
  rest: "-- <qemu args>",
  options: [
    qemuOption,
    { name: "machine", kind: "value", value: "TYPE", description: "the -machine value, e.g. pc,graphics=off or none" },
    { name: "memory", kind: "value", value: "SIZE", description: "the -m value, e.g. 256" },
    { name: "console", kind: "flag", description: "attach the serial console and copy it to stdout" },
    { name: "json", kind: "flag", description: "print events as JSON lines" },
    qmpLogOption
  ]
}

/** The `run` subcommand: the machine lives until QEMU exits, or until a signal shuts it down. */
export const run = (parsed: Parsed) => {
  const json = parsed.flags.has("json")
  const withConsole = parsed.flags.has("console")
  const memory = parsed.values.get("memory")
  let vm: Machine.MachineService | undefined
  const session = Effect.gen(function*() {
    const onTraffic = yield* trafficLog(parsed.values.get("qmp-log"))
    vm = yield* Machine.launch({
      binary: parsed.values.get("qemu")!,
      machineType: parsed.values.get("machine"),
      args: [...(memory === undefined ? [] : ["-m", memory]), ...parsed.passthrough],
      console: withConsole ? {} : undefined,
      qmp: { onTraffic }
    })
    const machine = vm
    // A second signal (main handles the first by interrupting us) kills it.
    yield* track(machine)
    yield* Console.error(`qemu-machine: pid ${machine.pid}: ${formatCommand(machine.command)}`)
    yield* Console.error(`qemu-machine: Ctrl-C shuts the machine down cleanly; a second Ctrl-C kills it`)

    yield* (yield* machine.qmp).events.pipe(
      Stream.runForEach((event) =>
        Console.error(
          json ? JSON.stringify(event) : `event ${event.event}${event.data === undefined ? "" : ` ${JSON.stringify(event.data)}`}`
        )
      ),
      Effect.forkScoped
    )
    if (withConsole) {
      const console = yield* machine.console
      yield* console.output.pipe(Stream.runForEach((chunk) => Effect.sync(() => process.stdout.write(chunk))), Effect.forkScoped)
    }
    yield* machine.wait(Duration.infinity)
  }).pipe(Effect.scoped)

  return session.pipe(
    Effect.catchTag("VMLaunchFailure", (error) => Effect.zipRight(Console.error(error.message), setExitCode(error.exitCode ?? 1))),
    Effect.ensuring(Effect.suspend(() =>
      vm === undefined ? Effect.void : Effect.flatMap(vm.exitStatus, Option.match({
        onNone: () => Effect.void,
        onSome: (s) => setExitCode(s.exitCode ?? 128 + (s.signal !== null ? NodeOs.constants.signals[s.signal] ?? 0 : 0))
      }))
    ))
  )
}
