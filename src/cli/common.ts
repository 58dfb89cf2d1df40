/**
 * Pieces the CLI's subcommands share: finding QEMU, the QMP traffic log,
 * the process exit code, and output helpers.
 */
import * as Command from "@effect/platform/Command"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import type * as Machine from "../Machine.js"
import { DEFAULT_BINARY } from "../MachineConfig.js"
import type { OptionSpec } from "./args.js"

/** `--qemu BINARY`, shared by every subcommand. */
export const qemuOption: OptionSpec = {
  name: "qemu",
  kind: "value",
  value: "BINARY",
  description: "the QEMU binary",
  default: DEFAULT_BINARY
}

/** `--qmp-log FILE`, shared by every subcommand. */
export const qmpLogOption: OptionSpec = {
  name: "qmp-log",
  kind: "value",
  value: "FILE",
  description: "append every QMP message sent and received to FILE, one JSON line each"
}

let exitCode = 0
/** Sets the code the process exits with once the CLI finishes. */
export const setExitCode = (code: number) => Effect.sync(() => {
  exitCode = code
})
/** The code set by `setExitCode`. */
export const getExitCode = () => exitCode

/** A failure of the CLI itself (a file it cannot open, a bad address): one line on stderr, exit code 1. */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string }> {}

/**
 * A traffic logger for `onQmpTraffic`: appends JSON lines to a file. The
 * file is opened before anything starts (a path that cannot be opened is a
 * `CliError`); a write that fails later is reported once on stderr and the
 * log stops, the session goes on. Flushed and closed with the scope.
 */
export const trafficLog = (path: string | undefined) =>
  Option.match(Option.fromNullable(path), {
    onNone: () => Effect.succeed(undefined),
    onSome: (file) =>
      Effect.acquireRelease(
        Effect.try({
          try: () => NodeFs.openSync(file, "a", 0o600),
          catch: (error) =>
            new CliError({ message: `--qmp-log ${file}: ${error instanceof Error ? error.message : String(error)}` })
        }).pipe(Effect.map((fd) => {
          const stream = NodeFs.createWriteStream(file, { fd })
          let failed = false
          stream.on("error", (error) => {
            if (failed) return
            failed = true
            process.stderr.write(`qemu-machine: --qmp-log ${file}: ${error.message}; the QMP log stops here\n`)
          })
          const write = (direction: "send" | "receive", message: unknown) => {
            if (!failed) stream.write(`${JSON.stringify({ time: new Date().toISOString(), direction, message })}\n`)
          }
          return { stream, write }
        })),
        ({ stream }) => Effect.async<void>((resume) => void stream.end(() => resume(Effect.void)))
      ).pipe(Effect.map(({ write }) => write))
  })

// Machines stay here past their scope's other finalizers: a second signal must reach one that is shutting down.
const machines = new Set<Machine.MachineService>()

/** Registers a machine for `killAll` (a no-op for it once it has stopped). */
export const track = (vm: Machine.MachineService) => Effect.sync(() => void machines.add(vm))

/** SIGKILLs every tracked machine now, even one that is shutting down (a second Ctrl-C). */
export const killAll = () => {
  for (const vm of machines) Effect.runFork(vm.kill.pipe(Effect.ignore))
}

/** Log lines go to stderr, so stdout carries only what a command prints (the JSON protocol of `shell --json`). */
export const stderrLogger = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.stringLogger))

/** Is `binary` runnable (an existing path, or found on PATH)? */
export const findBinary = (binary: string): Effect.Effect<Option.Option<string>, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const candidates = binary.includes("/")
      ? [binary]
      : (process.env.PATH ?? "").split(":").filter((dir) => dir !== "").map((dir) => NodePath.join(dir, binary))
    for (const candidate of candidates) {
      const executable = yield* fs.stat(candidate).pipe(
        Effect.map((info) => info.type === "File" && (info.mode & 0o111) !== 0),
        Effect.orElseSucceed(() => false)
      )
      if (executable) {
        return Option.some(candidate)
      }
    }
    return Option.none()
  })

/** How to get QEMU on this machine, in words (for an installed package: no repository scripts). */
export const installHint = (binary: string) =>
  [
    `${binary} was not found.`,
    "On Debian or Ubuntu, install it with:",
    "  sudo apt-get install -y --no-install-recommends qemu-system-x86",
    "or, as root, `qemu-machine demo --install-qemu` does that for you. `qemu-machine doctor` checks the rest."
  ].join("\n")

/** Installs qemu-system-x86 with apt-get when we are root on a Debian-like system. */
export const installQemu = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0
  const hasApt = yield* fs.exists("/usr/bin/apt-get").pipe(Effect.orElseSucceed(() => false))
  if (!isRoot || !hasApt) {
    return yield* Effect.fail(
      `cannot install QEMU here: ${!isRoot ? "not running as root" : "apt-get is not available"}`
    )
  }
  const run = (...args: Array<string>) =>
    Command.make("apt-get", ...args).pipe(
      Command.env({ DEBIAN_FRONTEND: "noninteractive" }),
      Command.stdout("inherit"),
      Command.stderr("inherit"),
      Command.exitCode,
      Effect.mapError((e) => `apt-get ${args[0]}: ${e.message}`),
      Effect.filterOrFail((code) => code === 0, (code) => `apt-get ${args[0]} exited with ${code}`)
    )
  yield* run("update", "-qq")
  yield* run("install", "-y", "--no-install-recommends", "qemu-system-x86")
})

/** Milliseconds since `start`, padded for a column. */
export const elapsed = (start: number) => `${String(Math.round(performance.now() - start)).padStart(5)} ms`

/** Removes terminal control sequences (SeaBIOS clears the screen) for display. */
export const stripAnsi = (text: string) =>
  // eslint-disable-next-line no-control-regex
  text.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[c()][0-9A-Za-z]?/g, "").replace(/\r/g, "")
