/**
 * Schema-derived answers: FakeQmp with `generate` answers every command of
 * the generated schema with a schema-valid value (checked here by decoding
 * every answer with the same schema), the same seed giving the same answers,
 * and emits any schema event with valid data.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { commands, Empty } from "../../src/generated/qapi.js"
import * as QmpClient from "../../src/QmpClient.js"
import * as FakeQmp from "../../src/testing/FakeQmp.js"

/** Every query command that takes no arguments. */
const queries = Object.entries(commands)
  .filter(([name, c]) => name.startsWith("query-") && c.args === Empty)
  .map(([name]) => name)

const client = (script: FakeQmp.FakeQmpScript) =>
  Effect.flatMap(FakeQmp.make(script), (fake) => QmpClient.connect({ path: fake.path }, { decode: true }))

describe("FakeQmp generate", () => {
  it.scopedLive("every argument-less query gets a schema-valid answer (decode: true accepts them all)", () =>
    Effect.gen(function*() {
      expect(queries.length).toBeGreaterThan(50)
      const qmp = yield* client({ generate: { seed: 1 } })
      for (const name of queries) {
        // Built-in handlers (query-status, query-version, ...) answer their own; the rest are generated.
        const result = yield* qmp.executeRaw(name).pipe(Effect.flatMap((reply) =>
          "error" in reply ? Effect.die(`${name}: ${reply.error.desc}`) : Effect.succeed(reply.return)))
        yield* Effect.orDie((qmp.execute as (c: string) => Effect.Effect<unknown, unknown>)(name))
        expect(result, name).toBeDefined()
      }
    }))

  it.scopedLive("the same seed gives the same answers; another seed, others", () =>
    Effect.gen(function*() {
      const answers = (seed: number) =>
        Effect.flatMap(client({ generate: { seed } }), (qmp) =>
          Effect.forEach(["query-kvm", "query-cpus-fast", "query-block", "query-migrate"], (name) => qmp.executeRaw(name)))
      const a = yield* answers(7)
      const b = yield* answers(7)
      const c = yield* answers(8)
      expect(b).toEqual(a)
      expect(c).not.toEqual(a)
    }))

  it.scopedLive("without generate, an unscripted command is CommandNotFound, as QEMU says of unknown ones", () =>
    Effect.gen(function*() {
      const qmp = yield* client({})
      const reply = yield* qmp.executeRaw("query-kvm")
      expect("error" in reply && reply.error.class).toBe("CommandNotFound")
    }))

  it.scopedLive("emitGenerated sends a schema event with valid data, and none for events without data", () =>
    Effect.gen(function*() {
      const fake = yield* FakeQmp.make({})
      const qmp = yield* QmpClient.connect({ path: fake.path }, { decode: true })
      const waiting = yield* Effect.fork(qmp.eventWait("JOB_STATUS_CHANGE", { timeout: "5 seconds" }))
      const sent = yield* fake.emitGenerated("JOB_STATUS_CHANGE", { seed: 3 })
      const event = yield* waiting.await.pipe(Effect.flatten)
      expect(event.data).toEqual(sent)
      const stop = yield* Effect.fork(qmp.eventWait("STOP", { timeout: "5 seconds" }))
      yield* fake.emitGenerated("STOP")
      expect("data" in (yield* stop.await.pipe(Effect.flatten))).toBe(false)
    }))
})
