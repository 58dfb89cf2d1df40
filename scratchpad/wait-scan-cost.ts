// What a pending console wait costs per chunk when much output is unconsumed (the reader searches after each
// chunk): 1 KiB or 900 KiB unconsumed, then 5,000 chunks of 16 bytes, a string wait and a RegExp wait pending.
import { Effect, Fiber } from "effect"
import { PassThrough } from "node:stream"
import * as ConsoleSocket from "../src/ConsoleSocket.js"
import * as Transport from "../src/internal/transport.js"
import { withNodeDefaults } from "../src/internal/platform.js"
const run = (unconsumedBytes: number, pattern: string | RegExp) => Effect.scoped(Effect.gen(function*() {
  const guest = new PassThrough()
  const transport = yield* Transport.fromDuplex(guest, "stand-in")
  const console = yield* withNodeDefaults(ConsoleSocket.fromTransport(transport, {}))
  guest.write("x".repeat(unconsumedBytes))
  yield* Effect.sleep("10 millis")
  const waiting = yield* Effect.fork(console.waitFor(pattern, { timeout: "60 seconds" }))
  yield* Effect.sleep("10 millis")
  const chunk = "0123456789abcdef"
  const t0 = performance.now()
  for (let i = 0; i < 5000; i++) guest.write(chunk)
  guest.write("DONE")
  yield* Fiber.join(waiting)
  return (performance.now() - t0) / 5000 * 1000
}))
Effect.runPromise(Effect.gen(function*() {
  for (const size of [1024, 900 * 1024]) for (const pattern of ["DONE", /DON(E)/]) {
    const us = yield* run(size, pattern)
    console.log(`unconsumed ${size} B, ${String(pattern)}: ${us.toFixed(1)} µs per chunk`)
  }
}))
