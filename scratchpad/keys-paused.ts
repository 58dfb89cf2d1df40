// Keys typed while the VM is paused: does QEMU keep them for when it runs again? (It drops input while not running.)
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as Machine from "../src/Machine.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
NodeFs.writeFileSync("/tmp/kbd.img", EchoGuest.keyboardImage())
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch(EchoGuest.keyboardMachineConfig("/tmp/kbd.img"))
  const console = yield* vm.console
  yield* console.waitFor(EchoGuest.KEYBOARD_BANNER, { timeout: "30 seconds" })
  yield* vm.execute("stop")
  yield* vm.sendKeys("abc", { holdTime: 10 })
  yield* vm.sendKey("x", { holdTime: 10 })
  yield* vm.execute("cont")
  yield* vm.sendKeys("Z", { holdTime: 10 })
  yield* console.waitFor("Z", { timeout: "5 seconds" })
  process.stdout.write(`after the banner: ${JSON.stringify((yield* console.recent).split("READY")[1])}\n`)
})))
