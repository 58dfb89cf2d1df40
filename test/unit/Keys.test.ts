/**
 * Keys over a fake QMP: what `sendKeys` and `sendKey` send, and that they
 * send nothing to a guest that is not running (QEMU would drop the keys
 * without an error) but fail with `KeyboardUnavailable` instead.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Display from "../../src/Display.js"
import * as QmpClient from "../../src/QmpClient.js"
import * as FakeQmp from "../../src/testing/FakeQmp.js"

const withStatus = (status: string, running: boolean) =>
  FakeQmp.layer({
    commands: {
      "query-status": () => FakeQmp.reply({ status: status as "running", running, singlestep: false }),
      "send-key": () => FakeQmp.reply({})
    }
  })

/** The send-key commands the fake received, as the key names of each chord. */
const chordsSent = Effect.map(FakeQmp.FakeQmp, (fake) => fake.received).pipe(
  Effect.flatten,
  Effect.map((commands) =>
    commands.filter((c) => "execute" in c && c.execute === "send-key").map((c) =>
      (c.arguments as { keys: Array<{ data: string }>; "hold-time": number }).keys.map((k) => k.data).join("+")
    )
  )
)

describe("keys (fake QMP)", () => {
  it.live("a paused guest: KeyboardUnavailable naming its status, and no key sent", () =>
    Effect.gen(function*() {
      const qmp = yield* QmpClient.QmpClient
      const error = yield* Effect.flip(Display.sendKeys(qmp, "ab", { holdTime: 1 }))
      expect(error).toBeInstanceOf(Display.KeyboardUnavailable)
      expect((error as Display.KeyboardUnavailable).status).toBe("paused")
      expect(error.message).toContain("cont")
      const chord = yield* Effect.flip(Display.sendKey(qmp, "ctrl-alt-delete", { holdTime: 1 }))
      expect(chord._tag).toBe("KeyboardUnavailable")
      expect(yield* chordsSent).toEqual([])
    }).pipe(Effect.provide(withStatus("paused", false))))

  it.live("a running guest gets every chord in order, with the hold time; a guest suspended to RAM too", () =>
    Effect.gen(function*() {
      const qmp = yield* QmpClient.QmpClient
      yield* Display.sendKeys(qmp, "aB!", { holdTime: 1 })
      yield* Display.sendKey(qmp, "ctrl-alt-delete", { holdTime: 1 })
      expect(yield* chordsSent).toEqual(["a", "shift+b", "shift+1", "ctrl+alt+delete"])
      const fake = yield* FakeQmp.FakeQmp
      yield* fake.setHandler("query-status", () => FakeQmp.reply({ status: "suspended", running: false, singlestep: false }))
      yield* Display.sendKeys(qmp, "z", { holdTime: 1 })
      expect((yield* chordsSent).at(-1)).toBe("z")
    }).pipe(Effect.provide(withStatus("running", true))))
})
