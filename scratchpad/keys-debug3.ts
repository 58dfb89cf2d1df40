import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as Machine from "../src/Machine.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
NodeFs.writeFileSync("/tmp/kbd.img", EchoGuest.keyboardImage())
const T = "a".repeat(Number(process.argv[2]))
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch(EchoGuest.keyboardMachineConfig("/tmp/kbd.img"))
  const console = yield* vm.console
  yield* console.waitFor(EchoGuest.KEYBOARD_BANNER, { timeout: "30 seconds" })
  yield* vm.sendKeys(T, { holdTime: 20 })
  yield* Effect.sleep("1 second")
  const a = (yield* console.unconsumed).split("a").length - 1
  yield* vm.sendKeys("Z", { holdTime: 20 })
  yield* Effect.sleep("1 second")
  const out = yield* console.unconsumed
  const qmp = yield* vm.qmp
  const regs = yield* qmp.hmp("info registers")
  process.stdout.write(`a's: ${a}; Z arrived: ${out.includes("Z")}; EIP ${/EIP=(\S+)/.exec(regs)?.[1]} CS ${/CS =(\S+)/.exec(regs)?.[1]} HLT ${/HLT=(\d)/.exec(regs)?.[1]}\n`)
})))
