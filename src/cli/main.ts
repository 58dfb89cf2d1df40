#!/usr/bin/env node
/**
 * The `qemu-machine` command line: `demo`, `run`, `shell`.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { getExitCode, splitPassthrough } from "./common.js"
import { demo } from "./demo.js"
import { run } from "./run.js"
import { shell } from "./shell.js"

const { cliArgs, qemuArgs } = splitPassthrough(process.argv)

const root = Command.make("qemu-machine").pipe(
  Command.withDescription("launch QEMU machines and drive them over QMP"),
  Command.withSubcommands([demo, run(qemuArgs), shell(qemuArgs)])
)

const cli = Command.run(root, { name: "qemu-machine", version: "0.1.0" })

cli(cliArgs).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: false,
    teardown: (exit, onExit) => {
      if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) onExit(1)
      else onExit(getExitCode())
    }
  })
)
