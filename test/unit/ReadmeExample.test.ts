// The README's fake-QMP example, kept compiling and passing.
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { QmpClient } from "../../src/index.js"
import * as FakeQmp from "../../src/testing/FakeQmp.js"

// Code under test depends on the QmpClient service, not on QEMU.
const isPaused = Effect.flatMap(QmpClient.QmpClient, (qmp) => qmp.execute("query-status")).pipe(
  Effect.map((status) => status.running === false) // typed: QueryStatusResult
)

it.scoped("sees a paused guest", () =>
  isPaused.pipe(
    Effect.tap((paused) => expect(paused).toBe(true)),
    Effect.provide(FakeQmp.layer({
      commands: { "query-status": () => FakeQmp.reply({ status: "paused", running: false }) }
    }))
  ))
