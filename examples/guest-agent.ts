/**
 * The guest agent of a Linux guest (docs/guest.md): run programs, copy
 * files, shut down. Compiled by `npm run check`; run it with
 * `npx tsx examples/guest-agent.ts` after `npm run guest:linux`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as LinuxGuest from "../scripts/linux-guest.js"
import { Machine } from "../src/index.js" // from "qemu-machine" in your project

const guest = LinuxGuest.cached()!

const program = Effect.gen(function*() {
  const vm = yield* Machine.launch({
    args: [
      "-nodefaults", "-nic", "none", "-m", "256",
      // This guest's /init starts qemu-ga on the virtio port when the command line says so.
      "-kernel", guest.kernel, "-initrd", guest.initrd, "-append", "console=ttyS0 quiet qga=virtio"
    ],
    // A virtio-serial port named org.qemu.guest_agent.0, as distributions' qemu-ga expect.
    guestAgent: { device: "virtio-serial" }
  })
  const agent = yield* vm.guestAgent
  // The first request waits (syncs) until the agent in the booting guest answers.
  yield* agent.sync({ timeout: "2 minutes" })
  yield* Console.log(yield* agent.osInfo)

  // A program and its arguments, no shell; a non-zero exit is a result, not an error.
  const { exitCode, stdout } = yield* agent.exec("/bin/busybox", ["uname", "-a"])
  yield* Console.log(exitCode, Buffer.from(stdout).toString())

  // Files in 1 MiB chunks, any size, any bytes.
  yield* agent.writeFile("/tmp/hello.txt", "hello from the host\n")
  const back = yield* agent.readFile("/tmp/hello.txt")
  yield* Console.log(Buffer.from(back).toString())

  // Typed from QEMU's qga schema: arguments and result.
  const time = yield* agent.execute("guest-get-time")
  yield* Console.log(`guest clock: ${new Date(time / 1e6).toISOString()}`)

  // The agent does not answer guest-shutdown: the machine's SHUTDOWN event does.
  const qmp = yield* vm.qmp
  yield* agent.shutdown()
  yield* qmp.eventWait("SHUTDOWN", { timeout: "1 minute" })
  yield* vm.wait("30 seconds")
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
