import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
import * as NodeFs from "node:fs"
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"] })
  const schema = yield* vm.execute("query-qmp-schema")
  NodeFs.writeFileSync("/tmp/schema.json", JSON.stringify(schema))
  console.log((schema as any[]).length)
}))).catch(e => console.error("ERR", e))
