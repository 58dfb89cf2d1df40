/**
 * A user-mode network card with host port forwards (docs/devices.md). Host
 * port 0 lets the kernel pick a free port; the address is loopback unless a
 * forward says otherwise. QEMU listens as soon as it starts, guest or not:
 * wait for the service's own banner before relying on a connection.
 *
 *   npx tsx examples/port-forward.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Machine, UserNetwork } from "../src/index.js" // from "qemu-machine" in your project

const program = Effect.gen(function*() {
  const vm = yield* Machine.launch({
    machineType: "pc",
    args: ["-nodefaults"],
    userNetwork: { model: "virtio-net-pci", forwards: [{ guestPort: 22 }, { guestPort: 53, protocol: "udp" }] }
  })
  const ssh = yield* vm.forwardedPort(22) // the real host port, read back from QEMU
  const dns = yield* vm.forwardedPort(53, { protocol: "udp" })
  yield* Console.log(`ssh: 127.0.0.1:${ssh}, dns: 127.0.0.1:${dns}/udp`)
  for (const forward of yield* Effect.flatMap(vm.qmp, UserNetwork.forwards)) {
    yield* Console.log(`${forward.protocol} ${forward.hostAddress}:${forward.hostPort} -> guest port ${forward.guestPort}`)
  }
  // No forward for 443: a typed error, not a guess.
  const missing = yield* Effect.flip(vm.forwardedPort(443))
  yield* Console.log(`${missing._tag}: ${missing.message}`)
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
