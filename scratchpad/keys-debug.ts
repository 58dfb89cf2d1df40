import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as Machine from "../src/Machine.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
NodeFs.writeFileSync("/tmp/kbd.img", EchoGuest.keyboardImage())
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch(EchoGuest.keyboardMachineConfig("/tmp/kbd.img"))
  const console = yield* vm.console
  yield* console.waitFor(EchoGuest.KEYBOARD_BANNER, { timeout: "30 seconds" })
  const t0 = Date.now()
  yield* vm.sendKeys(process.argv[2] ?? "Hello, World!", { holdTime: Number(process.argv[3] ?? 10) })
  console.log
  yield* Effect.sleep("4 seconds")
  process.stdout.write(JSON.stringify(yield* console.unconsumed) + ` ${Date.now() - t0} ms\n`)
})))
