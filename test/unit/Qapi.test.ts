import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream, TestServices } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { generate } from "../../scripts/qapiCodegen.js"
import * as Generated from "../../src/generated/qapi.js"
import * as Introspection from "../../src/internal/qapiIntrospection.js"
import * as Machine from "../../src/Machine.js"
import * as Qapi from "../../src/Qapi.js"
import * as QmpClient from "../../src/QmpClient.js"
import * as FakeQmp from "../../src/testing/FakeQmp.js"
import { captureWarnings, childPids, makeBaseDir } from "../helpers.js"

const root = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "../..")
const fixtureText = NodeFs.readFileSync(NodePath.join(root, "qapi/qmp-schema.json"), "utf8")
const fixture = JSON.parse(fixtureText) as { readonly schema: ReadonlyArray<Record<string, any>> }

const services = Effect.all({ qmp: QmpClient.QmpClient, fake: FakeQmp.FakeQmp })

/** A copy of the fixture's schema with every masked name renamed and every member list reversed. */
const renamedAndReordered = (schema: ReadonlyArray<Record<string, any>>) => {
  const rename = (name: string): string =>
    /^\d+$/.test(name) ? `m${name}` : /^\[(.*)\]$/.test(name) ? `[${rename(name.slice(1, -1))}]` : name
  return schema.map((info) => {
    const copy: Record<string, any> = { ...info, name: info["meta-type"] === "command" || info["meta-type"] === "event" ? info.name : rename(info.name) }
    for (const key of ["arg-type", "ret-type", "element-type"]) if (key in copy) copy[key] = rename(copy[key])
    if (Array.isArray(copy.members)) {
      copy.members = [...copy.members].reverse().map((m: any) => ("type" in m ? { ...m, type: rename(m.type) } : m))
    }
    if (Array.isArray(copy.variants)) {
      copy.variants = [...copy.variants].reverse().map((v: any) => ({ ...v, type: rename(v.type) }))
    }
    return copy
  })
}

describe("QAPI code generation", () => {
  it("src/generated/qapi.ts is exactly what the fixture generates", () => {
    const current = NodeFs.readFileSync(NodePath.join(root, "src/generated/qapi.ts"), "utf8")
    expect(generate(JSON.parse(fixtureText)) === current).toBe(true)
  })

  it("covers every command and event of the fixture", () => {
    const names = (kind: string) => fixture.schema.filter((i) => i["meta-type"] === kind).map((i) => i.name).sort()
    expect(Object.keys(Generated.commands).sort()).toEqual(names("command"))
    expect(Object.keys(Generated.events).sort()).toEqual(names("event"))
    expect(Object.keys(Generated.commands)).toHaveLength(216)
  })

  it("signatures ignore masked names and member order, and see a changed member", () => {
    const original = Introspection.signatures(fixture.schema as any)
    const shuffled = Introspection.signatures(renamedAndReordered(fixture.schema) as any)
    expect(shuffled).toEqual(original)
    expect(Introspection.structuralHash(shuffled)).toBe(Generated.structuralHash)
    // query-status's result: make `running` optional.
    const queryStatus = fixture.schema.find((i) => i.name === "query-status")!
    const changed = fixture.schema.map((i) =>
      i.name === queryStatus["ret-type"]
        ? { ...i, members: i.members.map((m: any) => (m.name === "running" ? { ...m, default: null } : m)) }
        : i
    )
    const diff = Introspection.diff(original.commands, Introspection.signatures(changed as any).commands)
    expect(diff).toEqual({ added: [], removed: [], changed: ["query-status"] })
  })
})

describe("typed execute and events", () => {
  it.scoped("unchecked by default: a wrong result passes through as sent", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      expect(yield* qmp.execute("query-status")).toEqual({ status: "running", running: "yes" })
    }).pipe(Effect.provide(FakeQmp.layer({
      commands: { "query-status": () => FakeQmp.replyUnchecked({ status: "running", running: "yes" }) }
    }))))

  it.scoped("decode per call: a wrong result is a QMPDecodeError naming the field", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      const error = yield* Effect.flip(qmp.execute("query-status", undefined, { decode: true }))
      expect(error).toMatchObject({ _tag: "QMPDecodeError", subject: "result", name: "query-status", path: "running" })
      expect(error.message).toContain("query-status result does not match the QAPI schema at running")
      const nested = yield* Effect.flip(qmp.execute("query-fdsets", undefined, { decode: true }))
      expect(nested).toMatchObject({ _tag: "QMPDecodeError", path: "[0].fds[1].fd" })
    }).pipe(Effect.provide(FakeQmp.layer({
      commands: {
        "query-status": () => FakeQmp.replyUnchecked({ status: "running", running: "yes", singlestep: false }),
        "query-fdsets": () => FakeQmp.replyUnchecked([{ "fdset-id": 1, fds: [{ fd: 3 }, { fd: "four" }] }])
      }
    }))))

  it.scoped("decode per client: a good result decodes, keeping fields the schema does not know", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      const status = yield* qmp.execute("query-status")
      expect(status).toEqual({ status: "running", singlestep: false, running: true, "x-future": 1 })
      // Unknown commands are not decoded.
      expect(yield* qmp.execute("x-unknown")).toEqual({ anything: true })
      // Arguments are checked before sending: unknown keys and wrong types.
      const bad = yield* Effect.flip(qmp.execute("human-monitor-command", { "command-line": 1 } as any))
      expect(bad).toMatchObject({ _tag: "QMPDecodeError", subject: "arguments", path: "command-line" })
      const extra = yield* Effect.flip(qmp.execute("stop", { now: true } as any))
      expect(extra).toMatchObject({ _tag: "QMPDecodeError", subject: "arguments", path: "now" })
      // ...and nothing was sent for them.
      const sent = (yield* (yield* FakeQmp.FakeQmp).received).map((c) => ("execute" in c ? c.execute : ""))
      expect(sent).toEqual(["qmp_capabilities", "query-status", "x-unknown"])
    }).pipe(Effect.provide(FakeQmp.layer({
      commands: {
        // A field a newer QEMU might add: kept when decoding.
        "query-status": () => FakeQmp.replyUnchecked({ status: "running", singlestep: false, running: true, "x-future": 1 }),
        "x-unknown": () => FakeQmp.reply({ anything: true })
      }
    }, { decode: true }))))

  it.scoped("eventWait and eventsNamed decode event data when asked", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.emit("SHUTDOWN", { guest: false, reason: "host-qmp-quit" })
      const good = yield* qmp.eventWait("SHUTDOWN")
      expect(good.data.reason).toBe("host-qmp-quit")
      yield* fake.emit("SHUTDOWN", { guest: false, reason: "not-a-reason" })
      const bad = yield* Effect.flip(qmp.eventWait("SHUTDOWN"))
      expect(bad).toMatchObject({ _tag: "QMPDecodeError", subject: "event", name: "SHUTDOWN", path: "reason" })

      const stream = yield* qmp.eventsNamed("STOP", "SHUTDOWN").pipe(Stream.take(3), Stream.runCollect, Effect.fork)
      yield* TestServices.provideLive(Effect.sleep("20 millis"))
      yield* fake.emit("POWERDOWN")
      yield* fake.emit("STOP")
      yield* fake.emit("SHUTDOWN", { guest: true, reason: "guest-shutdown" })
      yield* fake.emit("SHUTDOWN", { guest: "yes", reason: "guest-shutdown" })
      const ended = yield* Fiber.await(stream)
      expect(ended).toMatchObject({ _tag: "Failure", cause: { error: { _tag: "QMPDecodeError", path: "guest" } } })
    }).pipe(Effect.provide(FakeQmp.layer({}, { decode: true }))), { timeout: 10_000 })
})

const withSchema = (schema: unknown, options: QmpClient.QmpClientOptions) =>
  FakeQmp.layer({ commands: { "query-qmp-schema": () => FakeQmp.replyUnchecked(schema) } }, options)

describe("schema drift check", () => {
  it.scoped("the generated schema itself: same build, nothing to report", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      const report = yield* Qapi.checkDrift(qmp)
      expect(report).toMatchObject({ sameBuild: true, identical: true, commands: { added: [], removed: [], changed: [] } })
    }).pipe(Effect.provide(withSchema(fixture.schema, {}))))

  it.scoped("another build with the same shapes is identical, not the same build", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      const report = yield* Qapi.checkDrift(qmp)
      expect(report).toMatchObject({ sameBuild: false, identical: true })
      expect(Qapi.formatDrift(report)).toBe("same shapes (another build)")
    }).pipe(Effect.provide(withSchema(renamedAndReordered(fixture.schema), {}))))

  const drifted = (() => {
    const stop = fixture.schema.find((i) => i.name === "STOP")!
    return [
      ...fixture.schema.filter((i) => i.name !== "query-uuid" && i.name !== "STOP"),
      { name: "x-new-command", "meta-type": "command", "arg-type": "0", "ret-type": "0" },
      // STOP now carries data: the `str` of query-name's result type, say.
      { ...stop, "arg-type": fixture.schema.find((i) => i.name === "query-name")!["ret-type"] }
    ]
  })()

  it.scoped("lists commands and events added, removed and changed", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      const report = yield* Qapi.checkDrift(qmp)
      expect(report.identical).toBe(false)
      expect(report.commands).toEqual({ added: ["x-new-command"], removed: ["query-uuid"], changed: [] })
      expect(report.events).toEqual({ added: [], removed: [], changed: ["STOP"] })
      expect(Qapi.formatDrift(report)).toBe(
        "commands added: x-new-command; commands removed: query-uuid; events changed: STOP"
      )
    }).pipe(Effect.provide(withSchema(drifted, {}))))

  it.effect("schemaCheck: fail refuses the connection with QMPSchemaDrift", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(withSchema(drifted, { schemaCheck: "fail" })).pipe(Effect.scoped))
      expect(error).toMatchObject({ _tag: "QMPSchemaDrift", generatedFrom: "7.2.22", live: "7.2.22" })
      expect(error.message).toContain("commands removed: query-uuid")
    }))

  it.effect("schemaCheck: log warns and connects; an identical schema logs nothing", () =>
    Effect.gen(function*() {
      const drift = yield* captureWarnings(Layer.build(withSchema(drifted, { schemaCheck: "log" })).pipe(Effect.scoped))
      expect(drift.warnings).toHaveLength(1)
      expect(drift.warnings[0]).toContain("events changed: STOP")
      const same = yield* captureWarnings(Layer.build(withSchema(fixture.schema, { schemaCheck: "log" })).pipe(Effect.scoped))
      expect(same.warnings).toEqual([])
    }))

  it.effect("a server without query-qmp-schema is drift too (fail) or a warning (log)", () =>
    Effect.gen(function*() {
      const missing = FakeQmp.layer({}, { schemaCheck: "fail" })
      const error = yield* Effect.flip(Layer.build(missing).pipe(Effect.scoped))
      expect(error).toMatchObject({ _tag: "QMPSchemaDrift" })
      expect(error.message).toContain("could not read the schema")
    }))
})

describe("schema drift at launch", () => {
  const fakeQemu = NodePath.join(root, "test/fixtures/fake-qemu.mjs")

  it.live("schemaCheck: fail makes the launch a VMLaunchFailure (SchemaDrift), killed at once", () =>
    Effect.gen(function*() {
      const schemaFile = NodePath.join(makeBaseDir("fake-schema"), "schema.json")
      NodeFs.writeFileSync(schemaFile, JSON.stringify(fixture.schema.filter((i) => i.name !== "query-uuid")))
      const started = Date.now()
      const failure = yield* Effect.flip(Effect.scoped(Machine.launch({
        wrapper: [process.execPath, fakeQemu],
        dieWithParent: false,
        qmp: { schemaCheck: "fail" },
        env: { FAKE_QEMU_SCHEMA_FILE: schemaFile }
      })))
      // exitCode and signal stay null: QEMU did not end by itself, the launch killed it.
      expect(failure).toMatchObject({ _tag: "VMLaunchFailure", reason: "SchemaDrift", exitCode: null, signal: null })
      expect(failure.cause).toMatchObject({ _tag: "QMPSchemaDrift", summary: "commands removed: query-uuid" })
      // No two-second grace for a healthy process refused for its schema.
      expect(Date.now() - started).toBeLessThan(1500)
      expect(childPids()).toEqual([])
    }))

  it.live("schemaCheck: ignore (the default) launches the same fake without asking for the schema", () =>
    Effect.gen(function*() {
      const traffic: Array<string> = []
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch({
          wrapper: [process.execPath, fakeQemu],
          dieWithParent: false,
          qmp: {
            onTraffic: (direction, message) => {
              if (direction === "send") traffic.push(JSON.stringify(message))
            }
          }
        })
        expect(yield* vm.isRunning).toBe(true)
      }))
      expect(traffic.some((line) => line.includes("query-qmp-schema"))).toBe(false)
      expect(childPids()).toEqual([])
    }))
})
