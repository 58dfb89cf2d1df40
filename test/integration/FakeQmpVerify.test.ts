/**
 * FakeQmpVerify against a real QEMU: a script whose answers have QEMU's
 * shapes verifies clean; a wrong handler and a missing member are reported
 * by path.
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Machine from "../../src/Machine.js"
import * as FakeQmp from "../../src/testing/FakeQmp.js"
import * as FakeQmpVerify from "../../src/testing/FakeQmpVerify.js"
import { describeQemu, makeBaseDir, noneMachine } from "../helpers.js"

describeQemu("FakeQmpVerify (real QEMU)", () => {
  it.scopedLive("the built-in and generated answers have QEMU's shapes; a wrong handler is reported by path", () =>
    Effect.gen(function*() {
      const vm = yield* Machine.launch(noneMachine(makeBaseDir("verify")))
      const qmp = yield* vm.qmp
      const exchange = [
        { command: "query-status" },
        { command: "query-version" },
        { command: "query-kvm" },
        { command: "query-target" },
        { command: "query-uuid" }
      ]
      const clean = yield* FakeQmpVerify.verify({ generate: { seed: 5 } }, qmp, exchange)
      expect(clean.render()).toBe("the fake's answers have QEMU's shapes")
      expect(clean.ok).toBe(true)

      const wrong = yield* FakeQmpVerify.verify({
        generate: true,
        commands: {
          "query-kvm": () => FakeQmp.replyUnchecked({ enabled: "no" }),
          "query-uuid": () => FakeQmp.error("GenericError", "not in this fake")
        }
      }, qmp, exchange)
      expect(wrong.ok).toBe(false)
      const kvm = wrong.results.find((r) => r.command === "query-kvm")!
      expect(kvm.differences).toEqual([
        { path: "return.enabled", fake: "string", real: "boolean" },
        { path: "return.present", fake: "missing", real: "boolean" }
      ])
      expect(wrong.results.find((r) => r.command === "query-uuid")!.differences).toEqual([
        { path: "", fake: "error GenericError", real: "return" }
      ])
      expect(wrong.render()).toContain("query-kvm: return.present: fake missing, QEMU boolean")
      expect(wrong.results.every((r) => r.realMatchesSchema)).toBe(true)
    }))
})
