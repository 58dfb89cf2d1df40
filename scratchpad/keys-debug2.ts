import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as Machine from "../src/Machine.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
NodeFs.writeFileSync("/tmp/kbd.img", EchoGuest.keyboardImage())
const T = Array.from({ length: 40 }, (_, i) => `${String(i).padStart(3, "0")}-ABCde,`).join("")
const piece = Number(process.argv[2]), hold = Number(process.argv[3]), pause = Number(process.argv[4])
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch(EchoGuest.keyboardMachineConfig("/tmp/kbd.img"))
  const console = yield* vm.console
  yield* console.waitFor(EchoGuest.KEYBOARD_BANNER, { timeout: "30 seconds" })
  for (let i = 0; i < T.length; i += piece) {
    yield* vm.sendKeys(T.slice(i, i + piece), { holdTime: hold })
    yield* Effect.sleep(`${pause} millis`)
  }
  yield* Effect.sleep("1 second")
  const out = yield* console.unconsumed
  const got = out.slice(out.indexOf("00-ABCde") - 1)
  let ok = 0; while (ok < T.length && got[ok] === T[ok]) ok++
  process.stdout.write(`piece ${piece} hold ${hold} pause ${pause}: first ${ok} correct of ${T.length}; got ${got.length}\n`)
})))
