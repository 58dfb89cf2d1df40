import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as Machine from "../src/Machine.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
const chatty = ["sh", "-c", "echo 'wrapper: starting QEMU' >&2; exec \"$@\"", "sh"]
const img = `/tmp/rec-hang-${process.pid}.img`
NodeFs.writeFileSync(img, EchoGuest.image())
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(17)} ${m}\n`)
Effect.runPromise(Effect.gen(function*() {
  for (let round = 0; round < 10; round++) {
    yield* Effect.scoped(Effect.gen(function*() {
      log(`round ${round} launch`)
      const base = EchoGuest.machineConfig(img, { wrapper: chatty })
      const vm = yield* Machine.launch({ ...base, args: [...base.args ?? [], "-object", "secret,id=s0,data=x"] })
      log("banner wait"); yield* (yield* vm.console).waitFor(EchoGuest.BANNER, { timeout: "30 seconds" })
      log("query-status"); yield* vm.execute("query-status")
      log("device_add"); const e = yield* Effect.flip(vm.execute("device_add", { driver: "no-such-device", id: "d0" }))
      log(`got ${e._tag}`)
      log("console timeout"); const t = yield* Effect.flip((yield* vm.console).waitFor("never printed", { timeout: "100 millis" }))
      log(`got ${t._tag}`)
    })).pipe(Effect.timeout("20 seconds"), Effect.tapError(() => Effect.sync(() => log("TIMEOUT 20s"))), Effect.ignore)
    log("closed")
  }
})).finally(() => NodeFs.rmSync(img))
