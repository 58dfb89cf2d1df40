// Where the banner's extra milliseconds go (issue 17, bench:launch-console): spawn → first console chunk → the
// chunk holding "SeaBIOS" (stamped in ConsoleSocket's reader by a temporary `__qmT`) → `waitFor` returns,
// alternating with the bare client's own arrival times. `npx tsx scratchpad/banner-gap.ts [rounds]` after putting
// this line into ConsoleSocket's onChunk, after `const text = decoder.decode(...)` (commit first; then `git checkout src`):
//   ;(globalThis as any).__qmT?.("C.chunk"); if ((recent.toString() + text).includes("SeaBIOS")) (globalThis as any).__qmT?.("C.banner")
import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
import { launchBare } from "../bench/bare.js"
const N = Number(process.argv[2] ?? 20)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const rows: Record<string, number[]> = {}
const add = (k: string, v: number) => (rows[k] ??= []).push(v)
let t0 = 0
let firstChunk = 0
let bannerChunk = 0
;(globalThis as any).__qmT = (label: string) => {
  if (label === "C.chunk" && firstChunk === 0) firstChunk = performance.now() - t0
  if (label === "C.banner" && bannerChunk === 0) bannerChunk = performance.now() - t0
}
const args = ["-nic", "none", "-m", "64"]
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < N + 2; i++) {
    firstChunk = 0; bannerChunk = 0
    t0 = performance.now()
    yield* Effect.scoped(Effect.gen(function*() {
      const vm = yield* Machine.launch({ machineType: "pc,graphics=off", args, console: {}, dieWithParent: false })
      const ready = performance.now() - t0
      const console = yield* vm.console
      yield* console.waitFor("SeaBIOS", { timeout: "30 seconds" })
      const seen = performance.now() - t0
      yield* console.waitFor("No bootable device", { timeout: "30 seconds" })
      if (i >= 2) { add("lib.ready", ready); add("lib.firstChunk", firstChunk); add("lib.bannerChunk", bannerChunk); add("lib.waitForReturned", seen) }
    }))
    let bFirst = 0; let bBanner = 0; let text = ""
    const b0 = performance.now()
    let end = () => {}
    const ended = new Promise<void>((r) => (end = r))
    const q = yield* Effect.promise(() => launchBare(["-machine", "pc,graphics=off", ...args], true, (chunk) => {
      const now = performance.now() - b0
      if (bFirst === 0) bFirst = now
      text += chunk.toString("latin1")
      if (bBanner === 0 && text.includes("SeaBIOS")) bBanner = now
      if (text.includes("No bootable device")) end()
    }))
    const bReady = performance.now() - b0
    yield* Effect.promise(() => ended)
    q.console!.destroy()
    yield* Effect.promise(() => q.quit())
    if (i >= 2) { add("bare.ready", bReady); add("bare.firstChunk", bFirst); add("bare.bannerChunk", bBanner) }
  }
  for (const [k, v] of Object.entries(rows)) console.log(k.padEnd(22), median(v).toFixed(2))
}))
