/**
 * `qemu-machine demo`: boots the default SeaBIOS guest, shows its console
 * and QMP state, and shuts it down cleanly, with timings.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { formatCommand } from "../internal/redact.js"
import * as Machine from "../Machine.js"
import type { MachineConfig } from "../MachineConfig.js"
import type { CommandSpec, Parsed } from "./args.js"
import {
  elapsed,
  findBinary,
  installHint,
  installQemu,
  qemuOption,
  qmpLogOption,
  setExitCode,
  stripAnsi,
  track,
  trafficLog
} from "./common.js"

/** The demo's guest: SeaBIOS with no disk and no NIC prints its banner and "No bootable device" in a fraction of a second. */
export const seabios: MachineConfig = {
  machineType: "pc,graphics=off",
  args: ["-nic", "none", "-m", "64"],
  console: {}
}

export const spec: CommandSpec = {
  name: "demo",
  summary: "boot the default guest, show its console and QMP state, shut it down cleanly",
  options: [
    qemuOption,
    qmpLogOption,
    { name: "install-qemu", kind: "flag", description: "if QEMU is missing, install it with apt-get (needs root)" }
  ]
}

/** The demo itself. */
export const run = (parsed: Parsed) =>
  Effect.gen(function*() {
    const qemu = parsed.values.get("qemu")!
    if (Option.isNone(yield* findBinary(qemu))) {
      if (!parsed.flags.has("install-qemu")) {
        yield* Console.error(installHint(qemu))
        return yield* setExitCode(2)
      }
      yield* Console.log(`${qemu} is missing: installing qemu-system-x86 with apt-get`)
      const installed = yield* Effect.either(installQemu)
      if (installed._tag === "Left") {
        yield* Console.error(`${installed.left}\n\n${installHint(qemu)}`)
        return yield* setExitCode(2)
      }
    }
    const start = performance.now()
    const step = (text: string) => Console.log(`[${elapsed(start)}] ${text}`)
    const onTraffic = yield* trafficLog(parsed.values.get("qmp-log"))

    yield* Console.log(`qemu-machine demo: SeaBIOS with no disk and no NIC, serial console on a socket pair`)
    const vm = yield* Machine.launch({ ...seabios, binary: qemu, qmp: { onTraffic } })
    yield* track(vm)
    const version = yield* vm.execute("query-version")
    const v = version.qemu
    yield* step(`launched pid ${vm.pid}; QMP ready (QEMU ${v.major}.${v.minor}.${v.micro}, ${version.package})`)
    yield* step(`command: ${formatCommand(vm.command)}`)

    // Waits consume the console's output in order from launch on, so no line is missed.
    const console = yield* vm.console
    let done = false
    while (!done) {
      const line = stripAnsi((yield* console.waitFor("\n", { timeout: "30 seconds" })).before)
      if (line.trim() !== "") yield* step(`console | ${line}`)
      done = line.includes("No bootable device")
    }
    yield* step(`the guest ran SeaBIOS to its end`)

    const status = yield* vm.execute("query-status")
    yield* step(`query-status: ${status.status} (running: ${status.running})`)
    yield* step(`query-version: ${v.major}.${v.minor}.${v.micro} ${version.package}`)

    yield* vm.shutdown()
    const exit = yield* vm.exitCode
    yield* step(`shutdown: clean, QEMU exited with code ${Option.getOrElse(exit, () => -1)}; temp dir removed`)
  }).pipe(Effect.scoped)
