/**
 * User-mode networking on a real QEMU: forwards with host port 0 get a real
 * port, read back from `info usernet`; only loopback unless asked.
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeNet from "node:net"
import * as Machine from "../../src/Machine.js"
import * as UserNetwork from "../../src/UserNetwork.js"
import { describeQemu, leftovers, makeBaseDir } from "../helpers.js"

/** Connects to 127.0.0.1:port and closes again: whether anything listens there. */
const connects = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = NodeNet.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(true))
    })
    socket.once("error", () => resume(Effect.succeed(false)))
    return Effect.sync(() => socket.destroy())
  })

describeQemu("user-mode networking (real QEMU)", () => {
  it.scopedLive("forwards on host port 0 get real loopback ports, read with forwardedPort", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("usernet")
      const vm = yield* Machine.launch({
        baseTempDir: base,
        machineType: "pc",
        args: ["-nodefaults", "-S"],
        userNetwork: { model: "virtio-net-pci", forwards: [{ guestPort: 22 }, { guestPort: 80 }, { guestPort: 53, protocol: "udp" }] }
      })
      expect(vm.command.join(" ")).toContain(
        "-nic user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:0-:22,hostfwd=tcp:127.0.0.1:0-:80,hostfwd=udp:127.0.0.1:0-:53"
      )
      const ssh = yield* vm.forwardedPort(22)
      const http = yield* vm.forwardedPort(80)
      const dns = yield* vm.forwardedPort(53, { protocol: "udp" })
      expect(new Set([ssh, http, dns]).size).toBe(3)
      for (const port of [ssh, http, dns]) expect(port).toBeGreaterThan(1023)

      const all = yield* Effect.flatMap(vm.qmp, UserNetwork.forwards)
      expect(all.map((f) => [f.protocol, f.hostAddress, f.guestPort])).toEqual([
        ["tcp", "127.0.0.1", 22],
        ["tcp", "127.0.0.1", 80],
        ["udp", "127.0.0.1", 53]
      ])
      // QEMU itself listens: a connect succeeds with the guest not even started (-S).
      expect(yield* connects(ssh)).toBe(true)

      const missing = yield* Effect.flip(vm.forwardedPort(443))
      expect(missing._tag).toBe("PortForwardNotFound")
      expect(missing.message).toContain("guest port 443")
      const wrongProtocol = yield* Effect.flip(vm.forwardedPort(22, { protocol: "udp" }))
      expect(wrongProtocol._tag).toBe("PortForwardNotFound")

      yield* vm.shutdown()
      expect(yield* connects(ssh)).toBe(false)
      expect(leftovers(base)).toEqual([])
    }))
})
