#!/usr/bin/env node
/**
 * The `qemu-machine` command line: `demo`, `run`, `shell`, `doctor`.
 *
 * Signals: the first SIGINT, SIGTERM or SIGHUP interrupts the command, which
 * shuts its machine down cleanly; a second one kills QEMU at once (the
 * cleanup still runs) and the exit status is 128 + that signal's number.
 * Every listener stays until the process exits, so no signal ever meets
 * Node's default action.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import { help, overview, parse, UsageError } from "./args.js"
import { getExitCode, killAll, stderrLogger } from "./common.js"
import * as Demo from "./demo.js"
import * as Doctor from "./doctor.js"
import * as Run from "./run.js"
import * as Shell from "./shell.js"

const version = (JSON.parse(NodeFs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string
}).version
const commands = [Demo, Run, Shell, Doctor] as const

const describe = (error: unknown): string =>
  error !== null && typeof error === "object" && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)

const [name, ...words] = process.argv.slice(2)
const command = commands.find((c) => c.spec.name === name)
if (name === undefined || name === "--help" || name === "help") {
  process.stdout.write(`${overview(commands.map((c) => c.spec), version)}\n`)
  process.exit(name === undefined ? 2 : 0)
}
if (name === "--version") {
  process.stdout.write(`${version}\n`)
  process.exit(0)
}
if (command === undefined) {
  process.stderr.write(`qemu-machine: unknown command "${name}" (commands: ${commands.map((c) => c.spec.name).join(", ")})\n`)
  process.exit(2)
}
const dash = words.indexOf("--")
if ((dash < 0 ? words : words.slice(0, dash)).includes("--help")) {
  process.stdout.write(`${help(command.spec)}\n`)
  process.exit(0)
}
const parsed = parse(command.spec, words)
if (parsed instanceof UsageError) {
  process.stderr.write(`qemu-machine: ${parsed.message}; see \`qemu-machine ${command.spec.name} --help\`\n`)
  process.exit(2)
}

const program: Effect.Effect<void, unknown, NodeContext.NodeContext> = command.run(parsed)
const fiber = Effect.runFork(program.pipe(Effect.provide(NodeContext.layer), Effect.provide(stderrLogger)))

// Node exits when nothing is left to do; the fiber may wait on timers only, so keep the loop alive.
const keepAlive = setInterval(() => {}, 2 ** 31 - 1)
let signals = 0
let killedBy: NodeJS.Signals | undefined

const onSignal = (signal: NodeJS.Signals) => {
  signals++
  if (signals === 1) {
    process.stderr.write(`qemu-machine: ${signal}: shutting down cleanly (send it again to kill QEMU at once)\n`)
    fiber.unsafeInterruptAsFork(fiber.id())
  } else if (killedBy === undefined) {
    killedBy = signal
    process.stderr.write(`qemu-machine: ${signal} again: killing QEMU\n`)
    killAll()
  }
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal)

fiber.addObserver((exit) => {
  clearInterval(keepAlive)
  const failed = Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
  if (Exit.isFailure(exit)) {
    // One line each, no stack: the errors' messages say what went wrong.
    for (const error of Cause.failures(exit.cause)) process.stderr.write(`qemu-machine: ${describe(error)}\n`)
    for (const defect of Cause.defects(exit.cause)) process.stderr.write(`qemu-machine: unexpected: ${describe(defect)}\n`)
  }
  process.exit(killedBy !== undefined ? 128 + (NodeOs.constants.signals[killedBy] ?? 0) : failed ? 1 : getExitCode())
})
