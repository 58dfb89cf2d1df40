/**
 * Testing VM logic against answers QEMU could give (docs/devices.md): a fake
 * QMP server that answers every schema command without a handler with a
 * schema-valid value (the same seed, the same answers), and sends any schema
 * event with valid data. No QEMU needed.
 *
 *   npx tsx examples/fake-qmp-generated.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { QmpClient } from "../src/index.js" // from "qemu-machine" in your project
import * as FakeQmp from "../src/testing/FakeQmp.js" // from "qemu-machine/testing"

// The code under test: it depends on the QmpClient service only.
const describeVm = Effect.gen(function*() {
  const qmp = yield* QmpClient.QmpClient
  const status = yield* qmp.execute("query-status") // typed: QueryStatusResult
  const cpus = yield* qmp.execute("query-cpus-fast")
  return `${status.status}, running: ${status.running}, ${cpus.length} vCPU(s)`
})

const program = Effect.gen(function*() {
  yield* Console.log(`seed 7: ${yield* describeVm}`)
  const fake = yield* FakeQmp.FakeQmp
  const qmp = yield* QmpClient.QmpClient
  // A generated event, with data valid for its schema.
  const waited = qmp.eventWait("BLOCK_JOB_ERROR", { timeout: "5 seconds" })
  const [event] = yield* Effect.all([waited, fake.emitGenerated("BLOCK_JOB_ERROR")], { concurrency: 2 })
  yield* Console.log(`event: ${event.event} ${JSON.stringify(event.data)}`)
}).pipe(
  // Scripted handlers still win over generated answers.
  Effect.provide(FakeQmp.layer({ generate: { seed: 7 } })),
  Effect.scoped
)

NodeRuntime.runMain(program)
