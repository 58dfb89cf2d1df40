#!/usr/bin/env node
/**
 * The `qemu-machine` command line: `demo`, `run`, `shell`.
 *
 * Signals: the first SIGINT, SIGTERM or SIGHUP interrupts the command, which
 * shuts its machine down cleanly; a second one kills QEMU at once (the
 * cleanup still runs) and the exit status is 128 + that signal's number.
 * Every listener stays until the process exits, so no signal ever meets
 * Node's default action.
 */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as NodeOs from "node:os"
import { getExitCode, killAll, splitPassthrough, stderrLogger } from "./common.js"
import { demo } from "./demo.js"
import { run } from "./run.js"
import { shell } from "./shell.js"

const { cliArgs, qemuArgs } = splitPassthrough(process.argv)

const root = Command.make("qemu-machine").pipe(
  Command.withDescription("launch QEMU machines and drive them over QMP"),
  Command.withSubcommands([demo, run(qemuArgs), shell(qemuArgs)])
)

const cli = Command.run(root, { name: "qemu-machine", version: "0.1.0" })

const describe = (error: unknown): string =>
  error !== null && typeof error === "object" && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)

const fiber = Effect.runFork(cli(cliArgs).pipe(Effect.provide(NodeContext.layer), Effect.provide(stderrLogger)))

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
  if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
    // One line, no stack: the errors' messages say what went wrong. @effect/cli has printed its own already.
    for (const error of Cause.failures(exit.cause)) {
      if (!ValidationError.isValidationError(error)) process.stderr.write(`qemu-machine: ${describe(error)}\n`)
    }
    for (const defect of Cause.defects(exit.cause)) process.stderr.write(`qemu-machine: unexpected: ${describe(defect)}\n`)
  }
  process.exit(
    killedBy !== undefined
      ? 128 + (NodeOs.constants.signals[killedBy] ?? 0)
      : Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
      ? 1
      : getExitCode()
  )
})
