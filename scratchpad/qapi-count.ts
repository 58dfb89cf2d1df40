import { Effect, Either, Schema } from "effect"
import * as Generated from "../src/generated/qapi.js"
import * as Machine from "../src/Machine.js"
const names = Object.keys(Generated.commands).filter((n) => n.startsWith("query-")).filter((n) => Either.isRight(Schema.decodeUnknownEither((Generated.commands as any)[n].args)({}))).sort()
for (const config of [{ machineType: "none", args: ["-nodefaults"] }, { args: ["-nic", "none"] }]) {
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const vm = yield* Machine.launch(config)
    const refused: string[] = []; let ok = 0
    const t0 = performance.now()
    for (const n of names) { const r = yield* Effect.either(vm.execute(n, undefined, { decode: true })); if (Either.isRight(r)) ok++; else refused.push(`${n}(${(r.left as any).class ?? r.left._tag})`) }
    console.log(config.machineType ?? "pc", names.length, "ok", ok, "ms", (performance.now() - t0).toFixed(0), "refused:", refused.join(" "))
  })))
}
