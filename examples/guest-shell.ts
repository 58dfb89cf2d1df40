/**
 * A shell session on a Linux guest's serial console (docs/guest.md).
 * Compiled by `npm run check`; run it with `npx tsx examples/guest-shell.ts`
 * after `npm run guest:linux` (or point `kernel`/`initrd` at your own guest).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as LinuxGuest from "../scripts/linux-guest.js"
import { Machine, ShellSession } from "../src/index.js" // from "qemu-machine" in your project

const guest = LinuxGuest.cached()!

const program = Effect.gen(function*() {
  const vm = yield* Machine.launch({
    args: [
      "-nodefaults", "-nic", "none", "-m", "256",
      "-kernel", guest.kernel, "-initrd", guest.initrd, "-append", "console=ttyS0 quiet"
    ],
    console: {}
  })
  const console = yield* vm.console
  // Waits for the prompt; a kernel panic on the way fails at once (ConsoleFailure).
  const shell = yield* ShellSession.make(console, { timeout: "2 minutes" })

  const { exitCode, output } = yield* shell.run("uname -r; ls /no/such")
  yield* Console.log(`exit ${exitCode}:\n${output}`) // exit 1: the last command's

  // `succeed` fails with ShellCommandFailed (exit code, output) unless the command exits 0.
  const mounts = yield* shell.succeed("cat /proc/mounts")
  yield* Console.log(`${mounts.split("\n").length - 1} mounts`)

  // Ctrl-C: the running command fails with ShellInterrupted; the shell stays usable.
  const sleeper = yield* Effect.fork(shell.run("sleep 600"))
  yield* Effect.sleep("1 second")
  yield* shell.interrupt
  const error = yield* Effect.flip(sleeper.await.pipe(Effect.flatten))
  yield* Console.log(`${error._tag}: ${error.message}`)
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
