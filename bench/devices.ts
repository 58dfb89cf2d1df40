/**
 * Benchmarks of the features beyond the peers (issue 19), each against a
 * hand-written baseline in the same run: attaching to a running QEMU, the
 * flight recorder's cost on a round trip, a screenshot.
 */
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Machine from "../src/Machine.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
import type { BenchOptions } from "./benches.js"
import { alternating, compared, latency, report, round, scopedTempDir } from "./stats.js"

/** Connect, greeting, qmp_capabilities, close: what attaching costs a bare client. */
const bareAttach = (path: string) =>
  new Promise<void>((resolve, reject) => {
    const socket = Net.connect({ path })
    let buffer = ""
    socket.on("error", reject)
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8")
      if (buffer.includes('"QMP"') && !buffer.includes("qmp_capabilities_sent")) {
        buffer = "qmp_capabilities_sent"
        socket.write('{"execute":"qmp_capabilities"}')
      } else if (buffer.includes('"return"')) {
        socket.end()
        socket.once("close", () => resolve())
      }
    })
  })

/** Attach → detach to a QEMU started elsewhere (`-qmp unix:...`), against the bare client's connect → negotiate → close. */
export const attach = (options: BenchOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const dir = yield* scopedTempDir("qm-bench-attach-")
    const path = NodePath.join(dir, "qmp.sock")
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        ChildProcess.spawn("qemu-system-x86_64", ["-machine", "none", "-nodefaults", "-display", "none", "-qmp", `unix:${path},server=on,wait=off`], {
          stdio: "ignore"
        })
      ),
      (c) => Effect.sync(() => c.kill("SIGKILL"))
    )
    while (!NodeFs.existsSync(path)) yield* Effect.sleep("5 millis")
    const n = options.short ? 40 : 400
    const { baselineTimes, libraryTimes } = yield* alternating(
      Effect.promise(() => bareAttach(path)),
      Effect.scoped(Machine.attach({ monitor: { path } })),
      { n, block: 20, warmup: options.short ? 5 : 20 }
    )
    yield* report({
      bench: "attach",
      attaches: n,
      qemu_pid: child.pid,
      ...compared(libraryTimes, baselineTimes),
      note: "attach includes finding QEMU's pid (SO_PEERCRED) and its command line; the scope's end detaches"
    })
  }))

/** The flight recorder's cost on the QMP round trip: the same machine type with the recorder on and off, alternating. */
export const recorder = (options: BenchOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const config = { machineType: "none", args: ["-nodefaults"] } as const
    const off = yield* Effect.flatMap(Machine.launch({ ...config, flightRecorder: false }), (vm) => vm.qmp)
    const on = yield* Effect.flatMap(Machine.launch(config), (vm) => vm.qmp)
    const n = options.short ? 500 : 5000
    const { baselineTimes, libraryTimes } = yield* alternating(
      off.execute("query-status"),
      on.execute("query-status"),
      { n, block: 250, warmup: options.short ? 50 : 500 }
    )
    yield* report({
      bench: "recorder",
      commands: n,
      ...compared(libraryTimes, baselineTimes),
      target: { median: "<= 1.10 (issue 19)" },
      note: "library: flight recorder on (the default); baseline: flightRecorder: false"
    })
  }))

/**
 * `vm.screenshot()` (a PNG of a -vga std display, written, read back and
 * removed) against the same `screendump` sent raw on the same session with
 * the file read and removed by hand.
 */
export const screenshot = (options: BenchOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const dir = yield* scopedTempDir("qm-bench-shot-")
    const image = NodePath.join(dir, "keyboard.img")
    NodeFs.writeFileSync(image, EchoGuest.keyboardImage())
    const vm = yield* Machine.launch(EchoGuest.keyboardMachineConfig(image, { baseTempDir: dir }))
    yield* (yield* vm.console).waitFor(EchoGuest.KEYBOARD_BANNER, { timeout: "30 seconds" })
    const qmp = yield* vm.qmp
    const file = NodePath.join(dir, "bare.png")
    const bare = Effect.zipRight(
      qmp.executeRaw("screendump", { filename: file, format: "png" }),
      Effect.sync(() => {
        NodeFs.readFileSync(file)
        NodeFs.unlinkSync(file)
      })
    )
    const n = options.short ? 20 : 200
    const { baselineTimes, libraryTimes } = yield* alternating(bare, vm.screenshot(), { n, block: 10, warmup: 5 })
    const lib = latency(libraryTimes)
    const base = latency(baselineTimes)
    yield* report({
      bench: "screenshot",
      screenshots: n,
      library: { median_ms: round(lib.median_us / 1000), p99_ms: round(lib.p99_us / 1000) },
      baseline: { median_ms: round(base.median_us / 1000), p99_ms: round(base.p99_us / 1000) },
      ratio: { median: round(lib.median_us / base.median_us) },
      note: "720x400 text-mode display; QEMU encodes the PNG, most of the time is its"
    })
  }))
