import { Schema } from "effect"
import { SuccessReply } from "../src/QmpProtocol.js"
const decode = Schema.decodeUnknownEither(SuccessReply, { onExcessProperty: "preserve" })
const is = Schema.is(SuccessReply)
const msg = () => JSON.parse('{"return": {"status": "running", "running": true}, "id": 5}')
for (const [name, f] of [["decode", decode], ["is", is], ["none", (x: unknown) => x]] as const) {
  const N = 200000
  const t0 = performance.now()
  const h0 = process.memoryUsage().heapUsed
  for (let i = 0; i < N; i++) f(msg())
  console.log(name, ((performance.now() - t0) * 1000 / N).toFixed(2), "µs")
}
