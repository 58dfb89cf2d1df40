import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
import * as NodeFs from "node:fs"
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch({ args: ["-nic", "none"] })
  const schema = yield* vm.executeRaw("query-qmp-schema")
  NodeFs.writeFileSync("/tmp/schema-pc.json", JSON.stringify((schema as any).return))
}))).catch(e => console.error("ERR", e))
