/**
 * The generated QAPI Schemas against a real QEMU: every `query-*` command
 * that needs no arguments, on `-machine none` and on the default pc machine,
 * with each reply decoded by its generated Schema. Also the drift check and
 * typed events on the live QEMU.
 */
import { expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Schema, Stream } from "effect"
import * as Generated from "../../src/generated/qapi.js"
import * as Machine from "../../src/Machine.js"
import type { MachineConfig } from "../../src/MachineConfig.js"
import * as Qapi from "../../src/Qapi.js"
import { awaitSuspended, childPids, describeQemu, makeBaseDir } from "../helpers.js"

/** The generated `query-*` commands whose arguments are all optional. */
const argumentless = (Object.keys(Generated.commands) as Array<Qapi.CommandName>)
  .filter((name) => name.startsWith("query-"))
  .filter((name) => Either.isRight(Schema.decodeUnknownEither(Generated.commands[name].args as Schema.Schema<unknown>)({})))
  .sort()

/**
 * What QEMU 7.2 refuses on this host (TCG, no SEV or SGX, no balloon or
 * vmgenid device; -machine none also has no ACPI and no hotpluggable CPUs).
 * Each must fail with a `QMPCommandError`, never a decode error, and
 * everything else must succeed and decode.
 */
const refusedOnBoth = [
  "query-balloon",
  "query-sev-capabilities",
  "query-sev-launch-measure",
  "query-sgx",
  "query-sgx-capabilities",
  "query-vm-generation-id"
]
const refusedOnNone = [...refusedOnBoth, "query-acpi-ospm-status", "query-hotpluggable-cpus"].sort()

const runAll = (config: MachineConfig) =>
  Effect.scoped(Effect.gen(function*() {
    const vm = yield* Machine.launch(config)
    const decoded: Array<string> = []
    const refused: Array<string> = []
    for (const name of argumentless) {
      const result = yield* Effect.either(vm.execute(name as string, undefined, { decode: true }))
      if (Either.isRight(result)) {
        decoded.push(name)
        continue
      }
      // Decode errors and disconnects fail the test here, with the command's name.
      if (result.left._tag !== "QMPCommandError") {
        return yield* Effect.die(new Error(`${name}: ${result.left.message}`))
      }
      refused.push(name)
    }
    return { decoded, refused }
  }))

describeQemu("generated QAPI Schemas against real QEMU", () => {
  it("finds the argument-less query commands", () => {
    expect(argumentless.length).toBeGreaterThan(50)
    expect(argumentless).toContain("query-status")
    expect(argumentless).not.toContain("query-cpu-model-expansion")
  })

  for (
    const [label, config, expectRefused] of [
      ["-machine none", { machineType: "none", args: ["-nodefaults"] }, refusedOnNone],
      ["the default pc machine", { args: ["-nic", "none"] }, refusedOnBoth]
    ] as const
  ) {
    it.live(`every argument-less query-* decodes on ${label}`, () =>
      Effect.gen(function*() {
        const { decoded, refused } = yield* runAll({ ...config, baseTempDir: makeBaseDir("qapi") })
        expect(refused).toEqual(expectRefused)
        expect(decoded).toHaveLength(argumentless.length - expectRefused.length)
        expect(decoded).toEqual(expect.arrayContaining(["query-status", "query-cpus-fast", "query-qmp-schema"]))
        expect(childPids()).toEqual([])
      }), { timeout: 60_000 })
  }

  it.live("the drift check passes on the QEMU the types came from; typed events decode", () =>
    Effect.gen(function*() {
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch({
          args: ["-nic", "none"],
          baseTempDir: makeBaseDir("qapi-drift"),
          qmp: { schemaCheck: "fail", decode: true }
        })
        const report = yield* Qapi.checkDrift(yield* vm.qmp)
        expect(report).toMatchObject({ sameBuild: true, identical: true })
        const named = yield* (yield* vm.qmp).eventsNamed("STOP", "RESUME").pipe(Stream.take(2), Stream.runCollect, Effect.fork)
        yield* awaitSuspended(named)
        yield* vm.execute("stop")
        const stop = yield* (yield* vm.qmp).eventWait("STOP", { timeout: "5 seconds" })
        expect(stop.event).toBe("STOP")
        const status = yield* vm.execute("query-status")
        expect(status.status).toBe("paused")
        expect(status.running).toBe(false)
        yield* vm.execute("cont")
        expect((yield* (yield* vm.qmp).eventWait("RESUME", { timeout: "5 seconds" })).event).toBe("RESUME")
        expect([...yield* Fiber.join(named)].map((e) => e.event)).toEqual(["STOP", "RESUME"])
        yield* vm.execute("system_reset")
        const reset = yield* (yield* vm.qmp).eventWait("RESET", { timeout: "5 seconds" })
        expect(reset.data.reason).toBe("host-qmp-system-reset")
      }))
      expect(childPids()).toEqual([])
    }))
})
