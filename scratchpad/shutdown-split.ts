// Where a soft shutdown's time goes (issue 17): quit reply, QEMU's exit, post-shutdown.
import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
import * as QemuProcess from "../src/QemuProcess.js"
import { launchBare } from "../bench/bare.js"
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const rows: Record<string, number[]> = { quitReply: [], exitAfterQuit: [], shutdownTotal: [], bareQuitToExit: [] }
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < 33; i++) {
    let tQuitSent = 0, tQuitReply = 0, tExit = 0
    yield* Effect.scoped(Effect.gen(function*() {
      const vm = yield* Machine.launch({
        machineType: "none", args: ["-nodefaults"], dieWithParent: false,
        qmp: { onTraffic: (dir, msg) => {
          const m = msg as Record<string, unknown>
          if (dir === "send" && m.execute === "quit") tQuitSent = performance.now()
          if (dir === "receive" && "return" in m && tQuitSent > 0 && tQuitReply === 0) tQuitReply = performance.now()
        } }
      })
      const t0 = performance.now()
      const exitWatch = yield* Effect.fork(Effect.flatMap(vm.exitStatus, () => Effect.void))
      void exitWatch
      yield* vm.shutdown()
      const t1 = performance.now()
      if (i >= 3) { rows.shutdownTotal!.push(t1 - t0); rows.quitReply!.push(tQuitReply - tQuitSent) }
    }))
    const bare = yield* Effect.promise(() => launchBare())
    const b0 = performance.now()
    yield* Effect.promise(() => bare.quit())
    if (i >= 3) rows.bareQuitToExit!.push(performance.now() - b0)
    void tExit
  }
  for (const [k, v] of Object.entries(rows)) if (v.length) console.log(k.padEnd(16), median(v).toFixed(2))
}))
