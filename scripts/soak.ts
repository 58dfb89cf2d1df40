/**
 * Soak: launch → commands → shutdown, many times, with faults mixed in, and
 * count what the Node process holds before and after: open descriptors,
 * child processes, temp dirs. Exits 1 on any leak.
 *
 *   npm run soak               # 200 cycles
 *   npm run soak -- --cycles 30
 */
import { Duration, Effect, Fiber, Logger, LogLevel } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Machine from "../src/Machine.js"
import { qemuChildren, qemuDescendants } from "./procfs.js"

const arg = process.argv.indexOf("--cycles")
const cycles = arg >= 0 ? Number(process.argv[arg + 1]) : 200
const base = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "qm-soak-"))

const openFds = () => NodeFs.readdirSync("/proc/self/fd").length
// QEMU processes anywhere on the machine (a forking wrapper's QEMU is not our child): none may be left.
const qemuProcesses = () => qemuDescendants(1).length
const tempDirs = () => NodeFs.readdirSync(base).length

const config: Machine.MachineConfig = {
  machineType: "none",
  args: ["-nodefaults"],
  baseTempDir: base,
  shutdownTimeout: "2 seconds"
}

const faults = [
  "none",
  "sigkill",
  "sigstop",
  "interrupt",
  "user-quit",
  "garbage-command",
  "forking-wrapper-stopped"
] as const
type Fault = typeof faults[number]

const cycle = (fault: Fault) =>
  Effect.scoped(Effect.gen(function*() {
    // A wrapper that forks: QEMU is a grandchild, which every shutdown path must still reach.
    const vm = yield* Machine.launch(fault === "forking-wrapper-stopped" ? { ...config, wrapper: ["timeout", "600"] } : config)
    yield* vm.execute("query-status")
    switch (fault) {
      case "none":
        return yield* vm.shutdown()
      case "sigkill":
        process.kill(vm.pid, "SIGKILL")
        return yield* Effect.either(vm.shutdown())
      case "sigstop":
        process.kill(vm.pid, "SIGSTOP")
        return yield* Effect.either(vm.shutdown({ timeout: "300 millis" }))
      case "interrupt": {
        process.kill(vm.pid, "SIGSTOP")
        const fiber = yield* Effect.fork(vm.execute("query-status"))
        yield* Effect.sleep("20 millis")
        return yield* Fiber.interrupt(fiber)
      }
      case "user-quit":
        yield* vm.execute("quit")
        return yield* vm.shutdown()
      case "forking-wrapper-stopped":
        for (const pid of qemuDescendants(vm.pid)) process.kill(pid, "SIGSTOP")
        return yield* Effect.either(vm.shutdown({ timeout: "300 millis" }))
      case "garbage-command":
        yield* Effect.either(vm.execute("no-such-command", { x: "\u0000\"}{" }))
        return yield* vm.shutdown()
    }
  })).pipe(Effect.timeout(Duration.seconds(60)))

const main = Effect.gen(function*() {
  // One cycle first, so lazily opened descriptors (libuv, the module loader) are counted in "before".
  yield* cycle("none")
  const before = { fds: openFds(), children: qemuChildren(), qemu: qemuProcesses(), tempDirs: tempDirs() }
  const started = Date.now()
  const outcomes: Record<string, number> = {}
  for (let i = 0; i < cycles; i++) {
    const fault = faults[i % faults.length]!
    const exit = yield* Effect.exit(cycle(fault))
    const key = `${fault}:${exit._tag}`
    outcomes[key] = (outcomes[key] ?? 0) + 1
  }
  const after = { fds: openFds(), children: qemuChildren(), qemu: qemuProcesses(), tempDirs: tempDirs() }
  const leaked = after.fds !== before.fds || after.children !== before.children || after.qemu !== before.qemu ||
    after.tempDirs !== before.tempDirs
  console.log(JSON.stringify({ soak: cycles, seconds: Math.round((Date.now() - started) / 1000), before, after, outcomes, leaked }))
  NodeFs.rmSync(base, { recursive: true, force: true })
  if (leaked) process.exitCode = 1
})

Effect.runPromise(main.pipe(Logger.withMinimumLogLevel(LogLevel.Error))).catch((e) => {
  console.error(e)
  process.exit(1)
})
