/**
 * Shared test helpers: QEMU presence, the echo guest, leak checks, log capture.
 */
import { describe, expect, onTestFinished } from "@effect/vitest"
import { Effect, Fiber, FiberStatus, HashMap, Logger, Tracer } from "effect"
import { execFile, execFileSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as LinuxGuest from "../scripts/linux-guest.js"
import type { MachineConfig } from "../src/MachineConfig.js"

const projectRoot = NodePath.resolve(import.meta.dirname, "..")

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

/** The Linux test guest (`npm run guest:linux` builds it), if built. */
export const linuxGuest = LinuxGuest.cached()

if (linuxGuest === undefined && process.env.CI === "true") {
  throw new Error("the Linux test guest is not built, and CI=true: run npm run guest:linux")
}

/** `describe` for tests that boot the Linux guest: skipped only outside CI when it is not built. */
export const describeLinux = describe.skipIf(qemuVersion === undefined || linuxGuest === undefined)

/**
 * A fresh directory for one test's temp dirs, so leaks can be counted; removed
 * when the test ends (call it inside a test).
 */
export const makeBaseDir = (label: string): string => {
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), `qm-test-${label}-`))
  onTestFinished(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** What is left in a base dir. */
export const leftovers = (dir: string): Array<string> => NodeFs.readdirSync(dir)

/** Every live (non-zombie) process: pid, parent, and its command line. */
const processTable = (): Array<{ pid: number; ppid: number; cmdline: string }> => {
  const table: Array<{ pid: number; ppid: number; cmdline: string }> = []
  for (const entry of NodeFs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = NodeFs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      if (fields[0] === "Z") continue
      const cmdline = NodeFs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ")
      table.push({ pid: Number(entry), ppid: Number(fields[1]), cmdline })
    } catch {
      // raced with the process exiting
    }
  }
  return table
}

/**
 * Live descendants of this process, the whole tree (a forking wrapper's QEMU
 * is a grandchild), leaving out vitest's own workers.
 */
export const childPids = (): Array<number> => {
  const table = processTable()
  const found: Array<number> = []
  let frontier = [process.pid]
  while (frontier.length > 0) {
    const next = table.filter((p) => frontier.includes(p.ppid)).map((p) => p.pid)
    found.push(...next)
    frontier = next
  }
  return found
}

/** Live processes whose command line contains `marker` (e.g. a unique `-name`), wherever they were reparented. */
export const processesMarked = (marker: string): Array<number> =>
  processTable().filter((p) => p.pid !== process.pid && p.cmdline.includes(marker)).map((p) => p.pid)

/** Is a process alive (and not a zombie)? */
export const isAlive = (pid: number): boolean => {
  try {
    const stat = NodeFs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return false
  }
}

/** A warning and the log annotations it was made under. */
export interface AnnotatedWarning {
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** A logger layer that appends what is logged at warning level, with its annotations, to `records`. */
export const annotatedWarningsInto = (records: Array<AnnotatedWarning>) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ annotations, logLevel, message }) => {
      if (logLevel._tag === "Warning") {
        records.push({
          message: (Array.isArray(message) ? message : [message]).map(String).join(" "),
          annotations: Object.fromEntries(HashMap.toEntries(annotations))
        })
      }
    })
  )

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

/** A tracer that records every span it makes (over Effect's own), for asserting span trees. */
export const recordingTracer = () => {
  const spans: Array<Tracer.Span> = []
  const inner = Effect.runSync(Effect.tracer)
  const tracer = Tracer.make({
    span: (...args) => {
      const span = inner.span(...args)
      spans.push(span)
      return span
    },
    context: (f, fiber) => inner.context(f, fiber)
  })
  /** Each span as `parent > name`, in the order they started. */
  const tree = () =>
    spans.map((span) => {
      const parent = span.parent._tag === "Some" && span.parent.value._tag === "Span" ? span.parent.value.name : "-"
      return `${parent} > ${span.name}`
    })
  return { spans, tracer, tree }
}

/** Waits until a forked fiber is suspended (waiting on something): its first step has run. */
export const awaitSuspended = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Fiber.status(fiber).pipe(
    Effect.zipLeft(Effect.yieldNow()),
    Effect.repeat({ until: (status) => FiberStatus.isSuspended(status) || FiberStatus.isDone(status) }),
    Effect.asVoid
  )

/** The cheapest real machine: `-machine none -nodefaults`, its temp dir in `baseTempDir`. */
export const noneMachine = (baseTempDir: string, extra: MachineConfig = {}): MachineConfig => ({
  machineType: "none",
  args: ["-nodefaults"],
  baseTempDir,
  ...extra
})

/** After a scope closed: no process of ours left (the whole tree), nothing in `baseDir`, and `pid` dead. */
export const expectClean = (baseDir: string, pid?: number) => {
  if (pid !== undefined) expect(isAlive(pid)).toBe(false)
  expect(childPids()).toEqual([])
  expect(leftovers(baseDir)).toEqual([])
}

/** Runs an example as a user would (`node --import tsx examples/…` from the project root); never rejects. */
export const runExample = (file: string, timeoutMs: number) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    // SIGKILL at the timeout: NodeRuntime.runMain answers SIGTERM by interrupting the program and exiting 0,
    // which read as a clean run with no output. Killed, the result says so.
    execFile(
      process.execPath,
      ["--import", "tsx", file],
      { cwd: projectRoot, timeout: timeoutMs, killSignal: "SIGKILL" },
      (error, stdout, stderr) =>
        resolve({
          code: error === null ? 0 : typeof error.code === "number" ? error.code : null,
          stdout,
          stderr: error !== null && error.killed ? `${stderr}runExample: ${file} killed after ${timeoutMs} ms\n` : stderr
        })
    )
  })
