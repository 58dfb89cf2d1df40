// A launch → shutdown script must exit at once: no timer of the library may outlive the scope (issue 17 regression check).
import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
const t0 = Date.now()
process.on("exit", () => console.log(`process exit after ${Date.now() - t0} ms`))
void Effect.runPromise(Effect.scoped(Machine.launch({ machineType: "none", args: ["-nodefaults"] })))
