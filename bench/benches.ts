/**
 * The benchmarks. Each measures the library and a baseline in the same run
 * and prints one JSON line: { bench, library, baseline, ratio, target, ... }.
 * Nothing here asserts a time; the targets are printed for the reader.
 */
import { Duration, Effect } from "effect"
import { attach, recorder, screenshot } from "./devices.js"
import { guest } from "./guest.js"
import { launchConsole } from "./launchConsole.js"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Machine from "../src/Machine.js"
import * as Qapi from "../src/Qapi.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
import { qemuChildren } from "../scripts/procfs.js"
import { launchBare } from "./bare.js"
import { alternating, compared, median, micros, report, round } from "./stats.js"

export interface BenchOptions {
  readonly short: boolean
}

const noneConfig = { machineType: "none", args: ["-nodefaults"] } as const


/**
 * 5000 sequential query-status: median and p99 round trip. Both QEMUs run at
 * once and the two clients take turns in blocks of 250, so drift in the
 * machine's load hits both alike.
 */
export const qmpRtt = (options: BenchOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const n = options.short ? 500 : 5000
    const block = 250
    const warmup = options.short ? 50 : 500
    const bare = yield* Effect.acquireRelease(Effect.promise(() => launchBare()), (b) => Effect.promise(() => b.quit()))
    const vm = yield* Machine.launch(noneConfig)
    const qmp = yield* vm.qmp
    const { baselineTimes, libraryTimes } = yield* alternating(
      Effect.promise(() => bare.execute("query-status")),
      qmp.execute("query-status"),
      { n, block, warmup }
    )
    yield* report({
      bench: "qmp-rtt",
      commands: n,
      ...compared(libraryTimes, baselineTimes),
      target: { median: "<= 1.10", p99: "<= 1.3 (issue 17)" }
    })
  }))

/** 20000 commands, 64 in flight: throughput. */
export const qmpPipelined = (options: BenchOptions) =>
  Effect.gen(function*() {
    const n = options.short ? 2000 : 20000
    const inFlight = 64
    const bare = yield* Effect.promise(() => launchBare())
    const bareStart = performance.now()
    yield* Effect.promise(async () => {
      let next = 0
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (next < n) {
          next++
          await bare.execute("query-status")
        }
      }))
    })
    const bareRate = n / ((performance.now() - bareStart) / 1000)
    yield* Effect.promise(() => bare.quit())

    const libRate = yield* Effect.scoped(Effect.gen(function*() {
      const vm = yield* Machine.launch(noneConfig)
      const qmp = yield* vm.qmp
      const start = performance.now()
      yield* Effect.forEach(Array.from({ length: n }), () => qmp.execute("query-status"), {
        concurrency: inFlight,
        discard: true
      })
      return n / ((performance.now() - start) / 1000)
    }))
    yield* report({
      bench: "qmp-pipelined",
      commands: n,
      inFlight,
      library: { commands_per_s: Math.round(libRate) },
      baseline: { commands_per_s: Math.round(bareRate) },
      ratio: { throughput: round(libRate / bareRate) },
      target: { throughput: ">= 1.0 (issue 17)" }
    })
  })

/**
 * spawn → QMP ready for -machine none, the shutdown (ready → scope closed;
 * the bare client: `quit` → QEMU's exit) and the whole cycle. Each round
 * launches both, in alternating order; the overheads are medians of the
 * per-round differences, which this machine's drift (its bare launch moves
 * between 20 and 28 ms within minutes) cancels out of. Also the process's
 * CPU per cycle (all its threads), which holds stiller than wall time here.
 */
export const launch = (options: BenchOptions) =>
  Effect.gen(function*() {
    // 100 rounds: at 40, the same code on both sides (an A/A run) read up to 0.6 ms apart in the ready overhead here.
    const n = options.short ? 5 : 100
    const bare = { ready: [] as Array<number>, shutdown: [] as Array<number>, cpu: [] as Array<number> }
    const lib = { ready: [] as Array<number>, shutdown: [] as Array<number>, cpu: [] as Array<number> }
    const cpuMillis = () => {
      const usage = process.cpuUsage()
      return (usage.user + usage.system) / 1000
    }
    const bareRound = Effect.promise(async () => {
      const c0 = cpuMillis()
      const t0 = performance.now()
      const qemu = await launchBare()
      const ready = performance.now()
      await qemu.quit()
      bare.ready.push(ready - t0)
      bare.shutdown.push(performance.now() - ready)
      bare.cpu.push(cpuMillis() - c0)
    })
    const libRound = Effect.gen(function*() {
      const c0 = cpuMillis()
      const t0 = performance.now()
      let ready = 0
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Machine.launch({ ...noneConfig, dieWithParent: false })
        ready = performance.now()
      }))
      lib.ready.push(ready - t0)
      lib.shutdown.push(performance.now() - ready)
      lib.cpu.push(cpuMillis() - c0)
    })
    for (let i = 0; i < n; i++) {
      yield* i % 2 === 0 ? Effect.zipRight(bareRound, libRound) : Effect.zipRight(libRound, bareRound)
    }
    const paired = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => round(median(a.map((x, i) => x - b[i]!)))
    const figures = (side: typeof lib) => ({
      ready_ms: round(median(side.ready)),
      shutdown_ms: round(median(side.shutdown)),
      cycle_ms: round(median(side.ready.map((r, i) => r + side.shutdown[i]!))),
      cpu_ms_per_cycle: round(median(side.cpu))
    })
    const library = figures(lib)
    const baseline = figures(bare)
    yield* report({
      bench: "launch",
      launches: n,
      library,
      baseline,
      overhead_ms: {
        ready: paired(lib.ready, bare.ready),
        shutdown: paired(lib.shutdown, bare.shutdown),
        cycle: paired(lib.ready.map((r, i) => r + lib.shutdown[i]!), bare.ready.map((r, i) => r + bare.shutdown[i]!))
      },
      ratio: { ready: round(library.ready_ms / baseline.ready_ms), cycle: round(library.cycle_ms / baseline.cycle_ms) },
      target: { ready_overhead_ms: "<= 1 (issue 17)", shutdown_overhead_ms: "<= 1 (issue 17)" },
      note: "library without the setpriv wrapper, as the baseline; the wrapper adds one exec"
    })
  })

/** stop/cont: command → event delivery latency. */
export const events = (options: BenchOptions) =>
  Effect.gen(function*() {
    const n = options.short ? 100 : 1000
    const bare = yield* Effect.promise(() => launchBare())
    const bareTimes: Array<number> = []
    for (let i = 0; i < n; i++) {
      for (const [command, event] of [["stop", "STOP"], ["cont", "RESUME"]] as const) {
        const t0 = performance.now()
        const seen = bare.nextEvent(event)
        yield* Effect.promise(() => bare.execute(command))
        yield* Effect.promise(() => seen)
        bareTimes.push(performance.now() - t0)
      }
    }
    yield* Effect.promise(() => bare.quit())
    const libTimes: Array<number> = []
    yield* Effect.scoped(Effect.gen(function*() {
      const vm = yield* Machine.launch(noneConfig)
      for (let i = 0; i < n; i++) {
        for (const [command, event] of [["stop", "STOP"], ["cont", "RESUME"]] as const) {
          const t0 = performance.now()
          yield* vm.executeAndWait(command, undefined, event)
          libTimes.push(performance.now() - t0)
        }
      }
    }))
    yield* report({ bench: "events", cycles: n, ...compared(libTimes, bareTimes) })
  })

/** Console throughput from a guest flooding COM1. */
export const consoleFlood = (options: BenchOptions) =>
  Effect.gen(function*() {
    const seconds = options.short ? 1 : 5
    const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "qm-bench-"))
    const image = NodePath.join(dir, "echo.img")
    NodeFs.writeFileSync(image, EchoGuest.image())
    const guestArgs = EchoGuest.machineConfig(image).args!
    const bareRate = yield* Effect.promise(async () => {
      const bare = await launchBare(["-machine", "pc,graphics=off", ...guestArgs], true)
      let bytes = 0
      let text = ""
      let started = 0
      await new Promise<void>((resolve) =>
        bare.console!.on("data", (chunk: Buffer) => {
          if (started === 0) {
            text += chunk.toString()
            if (text.includes(EchoGuest.BANNER)) {
              started = -1
              bare.console!.write("f")
              resolve()
            }
          } else if (started > 0) bytes += chunk.length
        })
      )
      await new Promise((r) => setTimeout(r, 200))
      started = performance.now()
      await new Promise((r) => setTimeout(r, seconds * 1000))
      const rate = bytes / ((performance.now() - started) / 1000)
      bare.console!.destroy()
      await bare.quit()
      return rate
    })
    const libRate = yield* Effect.scoped(Effect.gen(function*() {
      const vm = yield* Machine.launch(EchoGuest.machineConfig(image))
      const console = yield* vm.console
      yield* console.waitFor(EchoGuest.BANNER, { timeout: "30 seconds" })
      yield* console.write("f")
      yield* Effect.sleep("200 millis")
      const before = yield* console.bytesReceived
      const start = performance.now()
      yield* Effect.sleep(Duration.seconds(seconds))
      return ((yield* console.bytesReceived) - before) / ((performance.now() - start) / 1000)
    }))
    NodeFs.rmSync(dir, { recursive: true })
    yield* report({
      bench: "console",
      seconds,
      library: { bytes_per_s: Math.round(libRate) },
      baseline: { bytes_per_s: Math.round(bareRate) },
      ratio: { throughput: round(libRate / bareRate) },
      note: "the guest writes COM1 as fast as TCG lets it; a slower reader slows the guest through socket backpressure"
    })
  })

/** Many -machine none VMs at once from one process: wall time, peak RSS, leftovers. */
export const fleet = (options: BenchOptions) =>
  Effect.gen(function*() {
    const n = options.short ? 10 : 100
    const base = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "qm-fleet-"))
    let peakRss = process.memoryUsage().rss
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss)
    }, 20)

    const bareStart = performance.now()
    yield* Effect.promise(() =>
      Promise.all(Array.from({ length: n }, async () => {
        const bare = await launchBare()
        await bare.execute("query-status")
        await bare.quit()
      }))
    )
    const bareWall = performance.now() - bareStart

    peakRss = process.memoryUsage().rss
    // What the process held before (tsx and the modules loaded: about 170 MB under tsx, 95 MB compiled).
    const rssBefore = peakRss
    const libStart = performance.now()
    yield* Effect.forEach(
      Array.from({ length: n }),
      () =>
        Effect.scoped(Effect.gen(function*() {
          const vm = yield* Machine.launch({ ...noneConfig, baseTempDir: base, launchTimeout: "120 seconds" })
          yield* vm.execute("query-status")
        })),
      { concurrency: "unbounded", discard: true }
    )
    const libWall = performance.now() - libStart
    clearInterval(sampler)
    const leftDirs = NodeFs.readdirSync(base).length
    const leftQemu = qemuChildren()
    NodeFs.rmSync(base, { recursive: true })
    yield* report({
      bench: "fleet",
      vms: n,
      library: { wall_ms: Math.round(libWall), peak_rss_mb: round(peakRss / 1e6, 1), rss_growth_mb: round((peakRss - rssBefore) / 1e6, 1) },
      baseline: { wall_ms: Math.round(bareWall) },
      ratio: { wall: round(libWall / bareWall) },
      after: { qemu_processes: leftQemu, temp_dirs: leftDirs },
      target: { wall: "<= 1.05 (issue 17)", peak_rss_mb: "<= 150, compiled (scratchpad/fleet-rss-dist.mjs)" },
      ok: leftQemu === 0 && leftDirs === 0
    })
    if (leftQemu !== 0 || leftDirs !== 0) {
      return yield* Effect.dieMessage(`fleet left ${leftQemu} QEMU processes and ${leftDirs} temp dirs`)
    }
  })

/**
 * The price of run-time checking: the same commands unchecked (baseline) and
 * with `decode: true`, in alternating blocks on one QEMU: query-status (small)
 * and query-qmp-schema (about 150 KB). Then the drift check: the same build
 * (hash only) and another build (signatures of every command and event).
 */
export const qmpDecode = (options: BenchOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const vm = yield* Machine.launch(noneConfig)
    const qmp = yield* vm.qmp
    const measure = (command: "query-status" | "query-qmp-schema", n: number, block: number) =>
      Effect.gen(function*() {
        const { baselineTimes, libraryTimes } = yield* alternating(
          qmp.execute(command),
          qmp.execute(command, undefined, { decode: true }),
          { n, block, warmup: block }
        )
        const lib = micros(median(libraryTimes))
        const base = micros(median(baselineTimes))
        return { command, n, decoded_median_us: lib, unchecked_median_us: base, ratio: round(lib / base) }
      })
    const small = yield* measure("query-status", options.short ? 200 : 2000, 100)
    const large = yield* measure("query-qmp-schema", options.short ? 10 : 60, 5)

    const time = <A, E>(effect: Effect.Effect<A, E>, n: number) =>
      Effect.gen(function*() {
        const times: Array<number> = []
        for (let i = 0; i < n; i++) {
          const t0 = performance.now()
          yield* effect
          times.push(performance.now() - t0)
        }
        return round(median(times), 2)
      })
    const raw = yield* qmp.executeRaw("query-qmp-schema")
    const schema = "return" in raw ? (raw.return as ReadonlyArray<Record<string, unknown>>) : []
    // Another build: same shapes, masked names prefixed (so no raw-hash match).
    const rename = (v: unknown): unknown => typeof v === "string" && /^\d+$/.test(v) ? `x${v}` : v
    const otherBuild = schema.map((info) =>
      Object.fromEntries(Object.entries(info).map(([k, v]) => [k, k === "name" || k.endsWith("type") ? rename(v) : v]))
    )
    yield* report({
      bench: "qmp-decode",
      small,
      large,
      drift_check_ms: {
        same_build: yield* time(Qapi.checkDrift(qmp), options.short ? 3 : 20),
        other_build_signatures_only: yield* time(Qapi.driftReport(otherBuild), options.short ? 3 : 20)
      },
      target: "decode on demand only; default is unchecked"
    })
  }))

export const all: Record<string, (options: BenchOptions) => Effect.Effect<void, unknown>> = {
  "qmp-decode": qmpDecode,
  "qmp-rtt": qmpRtt,
  "qmp-pipelined": qmpPipelined,
  "launch": launch,
  "launch-console": launchConsole,
  "events": events,
  "console": consoleFlood,
  "fleet": fleet,
  "guest": guest,
  "attach": attach,
  "recorder": recorder,
  "screenshot": screenshot
}
