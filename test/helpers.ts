/**
 * Shared test helpers: QEMU presence, the echo guest, leak checks, log capture.
 */
import { describe } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { execFileSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"

const qemuVersion = (() => {
  try {
    return execFileSync("qemu-system-x86_64", ["--version"], { encoding: "utf8" }).split("\n")[0]
  } catch {
    return undefined
  }
})()

if (qemuVersion === undefined && process.env.CI === "true") {
  // Integration tests must run in CI: a missing QEMU is a failure there, never a skip.
  throw new Error("qemu-system-x86_64 is not installed, and CI=true: install qemu-system-x86")
}

/** `describe` for tests that need a real QEMU: skipped only outside CI when QEMU is missing. */
export const describeQemu = describe.skipIf(qemuVersion === undefined)

/** A fresh directory for one test's temp dirs, so leaks can be counted. */
export const makeBaseDir = (label: string): string =>
  NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), `qm-test-${label}-`))

/** What is left in a base dir. */
export const leftovers = (dir: string): Array<string> => NodeFs.readdirSync(dir)

/** Live (non-zombie) child processes of this process. */
export const childPids = (): Array<number> => {
  const pids: Array<number> = []
  for (const entry of NodeFs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = NodeFs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      if (Number(fields[1]) === process.pid && fields[0] !== "Z") pids.push(Number(entry))
    } catch {
      // raced with the process exiting
    }
  }
  return pids
}

/** Is a process alive (and not a zombie)? */
export const isAlive = (pid: number): boolean => {
  try {
    const stat = NodeFs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return false
  }
}

/** A logger layer that appends what is logged at warning level and above to `lines`, fibers forked by layers included. */
export const warningsInto = (lines: Array<string>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning" || logLevel._tag === "Error" || logLevel._tag === "Fatal") {
        lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
      }
    })
  )

/** Runs an effect and collects what it logs at warning level and above. */
export const captureWarnings = <A, E, R>(effect: Effect.Effect<A, E, R>) => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning" || logLevel._tag === "Error" || logLevel._tag === "Fatal") {
      lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    }
  })
  return effect.pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
    Effect.map((value) => ({ value, warnings: lines }))
  )
}
