/**
 * A process that is not our child, known by its pid and start time (what an
 * attached QEMU is): a later process with the same pid is never taken for it,
 * neither by the liveness check nor by a signal.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as Procfs from "../../src/internal/procfs.js"

describe("Procfs identities", () => {
  it.live("a live process is itself; the same pid with another start time is not, and gets no signal", () =>
    Effect.gen(function*() {
      const child = ChildProcess.spawn("sleep", ["30"], { stdio: "ignore" })
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)))
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      const identity = Procfs.identify(child.pid!)
      expect(identity.startTime).toMatch(/^\d+$/)
      expect(Procfs.isSameAlive(identity)).toBe(true)

      // What a pid reused after the process exited looks like: same pid, another start time.
      const impostor = { pid: identity.pid, startTime: String(Number(identity.startTime) + 1) }
      expect(Procfs.isSameAlive(impostor)).toBe(false)
      expect(Procfs.signalIfSame(impostor, "SIGTERM")).toBe(false)
      expect(Procfs.isSameAlive(identity)).toBe(true)

      expect(Procfs.signalIfSame(identity, "SIGTERM")).toBe(true)
      expect(yield* Effect.promise(() => exited)).toBe("SIGTERM")
      expect(Procfs.isSameAlive(identity)).toBe(false)
      expect(Procfs.signalIfSame(identity, "SIGTERM")).toBe(false)
    }).pipe(Effect.scoped))

  it("a pid nobody holds: no start time, not alive, no signal", () => {
    // Above the largest pid_max Linux allows (2^22).
    const nobody = Procfs.identify(4_194_305)
    expect(nobody.startTime).toBeUndefined()
    expect(Procfs.isSameAlive(nobody)).toBe(false)
    expect(Procfs.signalIfSame(nobody, "SIGTERM")).toBe(false)
  })
})
