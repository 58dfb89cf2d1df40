/**
 * What the benchmarks share: order statistics, rounding, the JSON report
 * line, and timing a library and its baseline in alternating blocks.
 */
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"

export const median = (xs: ReadonlyArray<number>) => percentile(xs, 50)
export const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}
export const round = (x: number, digits = 2) => Number(x.toFixed(digits))
export const micros = (ms: number) => round(ms * 1000, 1)

export const report = (line: Record<string, unknown>) => Effect.sync(() => console.log(JSON.stringify(line)))

/** Median and p99 of round trips, in µs. */
export const latency = (times: ReadonlyArray<number>) => ({
  median_us: micros(median(times)),
  p99_us: micros(percentile(times, 99))
})

/**
 * Times `baseline` and `library` in alternating blocks (after `warmup` runs of
 * each), so drift in the machine's load hits both alike.
 */
export const alternating = (
  baseline: Effect.Effect<unknown, unknown>,
  library: Effect.Effect<unknown, unknown>,
  options: { readonly n: number; readonly block: number; readonly warmup: number }
) =>
  Effect.gen(function*() {
    const baselineTimes: Array<number> = []
    const libraryTimes: Array<number> = []
    for (let i = 0; i < options.warmup; i++) {
      yield* baseline
      yield* library
    }
    for (let done = 0; done < options.n; done += options.block) {
      for (const [effect, times] of [[baseline, baselineTimes], [library, libraryTimes]] as const) {
        for (let i = 0; i < options.block; i++) {
          const t0 = performance.now()
          yield* effect
          times.push(performance.now() - t0)
        }
      }
    }
    return { baselineTimes, libraryTimes }
  })

/** Library against baseline round trips: both latencies and their median and p99 ratios. */
export const compared = (libraryTimes: ReadonlyArray<number>, baselineTimes: ReadonlyArray<number>) => {
  const library = latency(libraryTimes)
  const baseline = latency(baselineTimes)
  return {
    library,
    baseline,
    ratio: { median: round(library.median_us / baseline.median_us), p99: round(library.p99_us / baseline.p99_us) }
  }
}

/** A directory of the bench's own in the temp dir, removed with the scope. */
export const scopedTempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), prefix))),
    (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
  )
