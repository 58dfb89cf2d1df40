// Fleet of 100: bare vs the compiled library in one process, alternating (issue 17).
import { Effect } from "effect"
import { launchBare } from "../bench/bare.js"
// @ts-ignore compiled output (npm run build)
import * as Machine from "../dist/Machine.js"
const n = 100
const bare = () => Promise.all(Array.from({ length: n }, async () => {
  const b = await launchBare()
  await b.execute("query-status")
  await b.quit()
}))
const lib = () => Effect.runPromise(Effect.forEach(Array.from({ length: n }), () => Effect.scoped(Effect.gen(function*() {
  const vm = yield* (Machine as any).launch({ machineType: "none", args: ["-nodefaults"], launchTimeout: "120 seconds", dieWithParent: process.argv[2] !== "nosetpriv" })
  yield* vm.execute("query-status")
})), { concurrency: "unbounded", discard: true }))
for (let round = 0; round < 3; round++) {
  let t = performance.now(); await bare(); const b = performance.now() - t
  t = performance.now(); await lib(); const l = performance.now() - t
  console.log(`bare ${b.toFixed(0)} ms, library ${l.toFixed(0)} ms, ratio ${(l / b).toFixed(2)}`)
}
