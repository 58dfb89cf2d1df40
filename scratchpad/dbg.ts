import { Effect } from "effect"
import * as QmpClient from "../src/QmpClient.js"
import * as FakeQmp from "../src/testing/FakeQmp.js"
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const qmp = yield* QmpClient.QmpClient
  console.log(yield* Effect.either(qmp.execute("query-status")))
  console.log(yield* Effect.either(qmp.execute("human-monitor-command", { "command-line": 1 } as any)))
  console.log(yield* Effect.either(qmp.execute("stop", { now: true } as any)))
}).pipe(Effect.provide(FakeQmp.layer({
      commands: {
        "query-status": () => FakeQmp.reply({ status: "running", singlestep: false, running: true, "x-future": 1 }),
        "x-unknown": () => FakeQmp.reply({ anything: true })
      }
    }, { decode: true }))))).catch(e => console.error("ERR", e))
