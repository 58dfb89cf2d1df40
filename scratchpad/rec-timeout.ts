import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as Machine from "../src/Machine.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
NodeFs.writeFileSync("/tmp/echo.img", EchoGuest.image())
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch(EchoGuest.machineConfig("/tmp/echo.img", { flightRecorder: process.argv[2] === "off" ? false : {} }))
  const c = yield* vm.console
  yield* c.waitFor(EchoGuest.BANNER)
  const t0 = Date.now()
  const e = yield* Effect.flip(c.waitFor("never printed", { timeout: "100 millis" }))
  console.log(e._tag, Date.now() - t0, "ms")
}))).then(() => console.log("done"))
