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

/**
 * The boot sector of test/fixtures/echo-guest.asm, as nasm assembles it
 * (test/unit/EchoGuest.test.ts checks the two agree when nasm is present).
 */
const ECHO_GUEST_CODE =
  "fa31c08ed88ed0bc007cfcbe5c7ce84000bafd03eca80174fbbaf803ec3c7174123c667415e81a003c0d75e5b00ae81100ebdeb001e6f4f4ebf9be6f7ce81100ebf850bafd03eca82074fb58baf803eec3ac84c07405e8e9ffebf6c34543484f2047554553542052454144590d0a00464c4f4f4420303132333435363738396162636465666768696a6b6c6d6e6f707172737475767778797a0d0a"

/** The echo guest as a 512-byte raw disk image. */
export const echoGuestImage = (): Uint8Array => {
  const image = new Uint8Array(512)
  image.set(Buffer.from(ECHO_GUEST_CODE, "hex"))
  image[510] = 0x55
  image[511] = 0xaa
  return image
}

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
