// Plain launch → shutdown cycles from the compiled package, for --trace-opt / --trace-gc runs (issue 17).
import { Effect } from "effect"
import * as Machine from "/work/main/dist/Machine.js"
const N = Number(process.argv[2] ?? 100)
for (let i = 0; i < N; i++) await Effect.runPromise(Effect.scoped(Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false })))
