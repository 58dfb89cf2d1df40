// Do the library's slow round trips coincide with GC? (issue 17 tail latency)
import { Effect } from "effect"
import { PerformanceObserver, performance } from "node:perf_hooks"
import * as Machine from "../src/Machine.js"
import { launchBare } from "../bench/bare.js"

const gcs: Array<{ start: number; end: number; kind: number }> = []
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration, kind: (e as any).detail?.kind ?? 0 })
}).observe({ entryTypes: ["gc"] })

const N = 5000
const analyse = (label: string, spans: Array<[number, number]>) => {
  const times = spans.map(([a, b]) => b - a).sort((a, b) => a - b)
  const p50 = times[Math.floor(N * 0.5)]!, p99 = times[Math.floor(N * 0.99)]!
  const slow = spans.filter(([a, b]) => b - a >= p99)
  const withGc = slow.filter(([a, b]) => gcs.some((g) => g.start < b && g.end > a))
  const gcIn = gcs.filter((g) => g.start >= spans[0]![0] && g.end <= spans[spans.length - 1]![1])
  console.log(label, { p50: (p50 * 1000).toFixed(0), p99: (p99 * 1000).toFixed(0), slow: slow.length, slowWithGc: withGc.length, gcs: gcIn.length, gcMs: gcIn.reduce((s, g) => s + g.end - g.start, 0).toFixed(1) })
}

Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const bare = yield* Effect.promise(() => launchBare())
  const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"] })
  const qmp = yield* vm.qmp
  for (let round = 0; round < 2; round++) {
    const lib: Array<[number, number]> = []
    for (let i = 0; i < N; i++) {
      const t0 = performance.now()
      yield* qmp.execute("query-status")
      lib.push([t0, performance.now()])
    }
    const b: Array<[number, number]> = []
    for (let i = 0; i < N; i++) {
      const t0 = performance.now()
      yield* Effect.promise(() => bare.execute("query-status"))
      b.push([t0, performance.now()])
    }
    analyse("library", lib)
    analyse("bare   ", b)
  }
  yield* Effect.promise(() => bare.quit())
})))
