/**
 * `qemu-machine run -- <qemu args>`: launch, stream the console to stdout,
 * print QMP events to stderr, Ctrl-C for a clean shutdown (a second Ctrl-C
 * kills), and exit with QEMU's exit code.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as NodeOs from "node:os"
import * as Machine from "../Machine.js"
import { formatCommand } from "../internal/redact.js"
import { binaryOption, qmpLogOption, setExitCode, track, trafficLog } from "./common.js"

const machineOption = Options.text("machine").pipe(
  Options.withDescription("the -machine value, e.g. pc,graphics=off or none"),
  Options.optional
)
const memoryOption = Options.text("memory").pipe(Options.withDescription("the -m value, e.g. 256"), Options.optional)
const consoleOption = Options.boolean("console").pipe(
  Options.withDescription("attach the serial console and copy it to stdout")
)
const jsonOption = Options.boolean("json").pipe(Options.withDescription("print events as JSON lines"))


/** The `run` subcommand; `qemuArgs` are the words after `--`. */
export const run = (qemuArgs: ReadonlyArray<string>) =>
  Command.make(
    "run",
    {
      qemu: binaryOption,
      machine: machineOption,
      memory: memoryOption,
      console: consoleOption,
      json: jsonOption,
      qmpLog: qmpLogOption
    },
    (options) => {
      let vm: Machine.MachineService | undefined
      const session = Effect.gen(function*() {
        const onQmpTraffic = yield* trafficLog(options.qmpLog)
        vm = yield* Machine.launch({
          binary: options.qemu,
          machineType: Option.getOrUndefined(options.machine),
          args: [...Option.match(options.memory, { onNone: () => [], onSome: (m) => ["-m", m] }), ...qemuArgs],
          console: options.console ? {} : undefined,
          qmp: { onTraffic: onQmpTraffic }
        })
        const machine = vm
        yield* Console.error(`qemu-machine: pid ${machine.pid}: ${formatCommand(machine.command)}`)
        yield* Console.error(`qemu-machine: Ctrl-C shuts the machine down cleanly; a second Ctrl-C kills it`)

        // A second Ctrl-C (main handles the first by interrupting us) kills it.
        yield* track(machine)

        yield* (yield* machine.qmp).events.pipe(
          Stream.runForEach((event) =>
            Console.error(
              options.json
                ? JSON.stringify(event)
                : `event ${event.event}${event.data === undefined ? "" : ` ${JSON.stringify(event.data)}`}`
            )
          ),
          Effect.forkScoped
        )
        if (options.console) {
          const console = yield* machine.console
          yield* console.output.pipe(
            Stream.runForEach((chunk) => Effect.sync(() => process.stdout.write(chunk))),
            Effect.forkScoped
          )
        }
        yield* machine.wait(Duration.infinity)
      }).pipe(Effect.scoped)

      return session.pipe(
        Effect.catchTag("VMLaunchFailure", (error) =>
          Effect.zipRight(Console.error(error.message), setExitCode(error.exitCode ?? 1))),
        Effect.ensuring(Effect.suspend(() => {
          if (vm === undefined) return Effect.void
          return Effect.flatMap(vm.exitStatus, (status) =>
            Option.match(status, {
              onNone: () => Effect.void,
              onSome: (s) =>
                setExitCode(s.exitCode ?? 128 + (s.signal !== null ? NodeOs.constants.signals[s.signal] ?? 0 : 0))
            }))
        }))
      )
    }
  ).pipe(Command.withDescription("launch QEMU with the given arguments (after --) until it exits or Ctrl-C"))
