// How fast QEMU plays `send-key` chords, and whether long text arrives whole if one waits (the "150 characters" limit).
// `npx tsx scratchpad/keys-rate.ts N HOLD`: sends N "a"s (then a "Z"), reports when sendKeys returned, when the
// last "a" and the "Z" were echoed, and how many "a"s arrived.
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as Machine from "../src/Machine.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
NodeFs.writeFileSync("/tmp/kbd.img", EchoGuest.keyboardImage())
const N = Number(process.argv[2] ?? 200)
const hold = Number(process.argv[3] ?? 20)
const text = (process.argv[4] ?? "a").repeat(N)
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch(EchoGuest.keyboardMachineConfig("/tmp/kbd.img"))
  const console = yield* vm.console
  yield* console.waitFor(EchoGuest.KEYBOARD_BANNER, { timeout: "30 seconds" })
  const t0 = Date.now()
  yield* vm.sendKeys(text, { holdTime: hold })
  const returned = Date.now() - t0
  yield* vm.sendKeys("Z", { holdTime: hold })
  const z = yield* console.waitFor("Z", { timeout: `${Math.ceil((N * 6 * hold) / 1000) + 10} seconds` }).pipe(Effect.either)
  const out = yield* console.recent
  const arrived = out.split("READY")[1]!.split("Z")[0]!.replace(/\s/g, "").length
  process.stdout.write(JSON.stringify({ N, hold, returnedMs: returned, perCharMs: +(returned / N).toFixed(1), zMs: Date.now() - t0, zArrived: z._tag === "Right", arrived }) + "\n")
})))
