/**
 * `accel: "auto"` and `Machine.kvmProbe` decide from a guest that runs, never
 * from /dev/kvm: two stand-in QEMUs make both verdicts happen on any host
 * (one starts frozen under -accel kvm, as this machine's KVM behaves; the
 * other runs a KVM request under TCG, as a working KVM would run it).
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Machine from "../../src/Machine.js"
import { describeQemu, makeBaseDir } from "../helpers.js"

/**
 * A QEMU stand-in: a shell script in `dir` that counts the probes (the only
 * launches with a `-drive` here) in `dir/probes`, then runs `body`, which
 * ends by running the real QEMU. Returns its path and how to read the count.
 */
const standIn = (dir: string, name: string, body: string) => {
  const path = NodePath.join(dir, name)
  const counter = NodePath.join(dir, "probes")
  NodeFs.writeFileSync(path, `#!/bin/sh\ncase " $* " in *" -drive "*) echo probe >> ${counter};; esac\n${body}\n`, { mode: 0o755 })
  return { path, probes: () => NodeFs.readFileSync(counter, "utf8").trim().split("\n").length }
}

describeQemu("accel: auto (real QEMU behind stand-ins)", () => {
  it.scopedLive("a KVM that starts but runs nothing: the probe says no within its deadline, auto picks tcg", () =>
    Effect.gen(function*() {
      const dir = makeBaseDir("accel-frozen")
      const started = Date.now()
      const { path: frozen, probes } = standIn(
        dir,
        "qemu-frozen-kvm",
        'case " $* " in *" -accel kvm "*) exec qemu-system-x86_64 "$@" -S;; esac\nexec qemu-system-x86_64 "$@"'
      )
      const verdict = yield* Machine.kvmProbe({ binary: frozen, deadline: "1 second" })
      expect(verdict).toEqual({ runs: false, detail: "no output within 1s" })
      expect(Date.now() - started).toBeLessThan(15_000)
      const vm = yield* Machine.launch({ binary: frozen, machineType: "none", args: ["-nodefaults"], accel: "auto", baseTempDir: dir })
      expect(vm.command.join(" ")).toContain("-accel tcg")
      // A no from a deadline shorter than auto's own is not taken: auto probed again.
      expect(probes()).toBe(2)
      expect(NodeFs.readdirSync(dir).filter((f) => f.startsWith("qemu-machine-kvm-"))).toEqual([])
    }), 60_000)

  it.scopedLive("a KVM that runs the guest: the probe says yes, auto picks kvm (asked once per binary, the user's probe counting)", () =>
    Effect.gen(function*() {
      const dir = makeBaseDir("accel-works")
      // Runs every KVM request under TCG.
      const { path: working, probes } = standIn(
        dir,
        "qemu-working-kvm",
        'for a in "$@"; do [ "$a" = kvm ] && a=tcg; set -- "$@" "$a"; shift; done\nexec qemu-system-x86_64 "$@"'
      )
      expect(yield* Machine.kvmRuns({ binary: working })).toBe(true)
      const config = { binary: working, machineType: "none", args: ["-nodefaults"], accel: "auto", baseTempDir: dir } as const
      const [a, b] = yield* Effect.all([Machine.launch(config), Machine.launch(config)], { concurrency: 2 })
      expect(a.command.join(" ")).toContain("-accel kvm")
      expect(b.command.join(" ")).toContain("-accel kvm")
      // One probe in all: kvmRuns' verdict is the one both auto launches use.
      expect(probes()).toBe(1)
    }), 60_000)

  it.scopedLive("no such binary: the probe says no, with the launch's reason", () =>
    Effect.gen(function*() {
      const verdict = yield* Machine.kvmProbe({ binary: "/nonexistent/qemu" })
      expect(verdict.runs).toBe(false)
      expect(verdict.detail).toMatch(/launch failed|nonexistent/)
    }))
})
