/**
 * A real Linux guest (Debian's cloud kernel, a busybox initramfs with Debian's
 * qemu-ga; `npm run guest:linux` builds it) driven through the public API:
 * a shell on the serial console, a login at a getty, the guest agent over an
 * ISA serial port and over virtio-serial.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option } from "effect"
import * as NodeCrypto from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodeNet from "node:net"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as LinuxGuest from "../../scripts/linux-guest.js"
import * as GuestAgent from "../../src/GuestAgent.js"
import * as Machine from "../../src/Machine.js"
import * as ShellSession from "../../src/ShellSession.js"
import { childPids, describeLinux, leftovers, linuxGuest } from "../helpers.js"

class Guest extends Context.Tag("test/Guest")<Guest, {
  readonly vm: Machine.MachineService
  readonly shell: ShellSession.ShellSessionService
  readonly agent: GuestAgent.GuestAgentService
}>() {}

const base = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "qm-test-linux-"))
// A socket of the test's own making, outside the dir whose leftovers are checked.
const agentDir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "qm-test-qga-"))
const agentPath = NodePath.join(agentDir, "qga.sock")
afterAll(() => {
  // Every machine of the file is gone with its layer: no QEMU left, no temp dir.
  expect(childPids()).toEqual([])
  expect(leftovers(base)).toEqual([])
  NodeFs.rmSync(base, { recursive: true, force: true })
  NodeFs.rmSync(agentDir, { recursive: true, force: true })
})

/** A booted guest with a root shell on ttyS0 and the agent on `agent`. */
const bootedGuest = (agent: "isa-serial" | "virtio-serial") =>
  Layer.scoped(
    Guest,
    Effect.gen(function*() {
      const vm = yield* Machine.launch(LinuxGuest.machineConfig(linuxGuest!, { agent }, { baseTempDir: base }))
      const shell = yield* ShellSession.make(yield* vm.console, { timeout: "120 seconds" })
      return { vm, shell, agent: yield* vm.guestAgent }
    })
  )

const md5 = (data: Uint8Array) => NodeCrypto.createHash("md5").update(data).digest("hex")

describeLinux("a Linux guest", () => {
  layer(bootedGuest("isa-serial"), { excludeTestServices: true, timeout: "180 seconds" })("shell and agent over ISA serial", (it) => {
    it.effect("run: exit codes, stdout and stderr together, output exactly as written", () =>
      Effect.gen(function*() {
        const { shell } = yield* Guest
        expect(yield* shell.run("echo out; echo err >&2")).toEqual({ exitCode: 0, output: "out\nerr\n" })
        expect(yield* shell.run("printf 'no newline'")).toEqual({ exitCode: 0, output: "no newline" })
        expect(yield* shell.run("exit_with() { return $1; }; exit_with 42")).toEqual({ exitCode: 42, output: "" })
        expect(yield* shell.succeed("uname -s")).toBe("Linux\n")
        const failed = yield* Effect.flip(shell.succeed("ls /no/such"))
        expect(failed).toMatchObject({ _tag: "ShellCommandFailed", exitCode: 1 })
        expect(failed._tag === "ShellCommandFailed" && failed.output).toContain("/no/such")
      }))

    it.effect("output that looks like the markers, and a megabyte of it, comes back exact", () =>
      Effect.gen(function*() {
        const { shell } = yield* Guest
        const fake = yield* shell.run("echo __QM_E_000000000000_0__; echo __QM_S_x__; false")
        expect(fake).toEqual({ exitCode: 1, output: "__QM_E_000000000000_0__\n__QM_S_x__\n" })
        const big = yield* shell.run("head -c 1048576 /dev/zero | tr '\\0' 'x'; echo; echo end")
        expect(big.exitCode).toBe(0)
        expect(big.output).toBe(`${"x".repeat(1048576)}\nend\n`)
      }))

    it.effect("commands from concurrent fibers run one at a time, each with its own output", () =>
      Effect.gen(function*() {
        const { shell } = yield* Guest
        const results = yield* Effect.all(
          Array.from({ length: 8 }, (_, i) => shell.run(`sleep 0.0$((${i} % 3)); echo ${i}`)),
          { concurrency: "unbounded" }
        )
        expect(results.map((r) => r.output)).toEqual(Array.from({ length: 8 }, (_, i) => `${i}\n`))
      }))

    it.effect("interrupt: the running command fails with ShellInterrupted, and the shell goes on", () =>
      Effect.gen(function*() {
        const { agent, shell } = yield* Guest
        const sleeper = yield* Effect.fork(shell.run("sleep 300"))
        // Wait until the guest runs it, by asking the agent rather than sleeping.
        yield* agent.exec("/bin/pidof", ["sleep"]).pipe(Effect.repeat({ until: (r) => r.exitCode === 0 }))
        yield* shell.interrupt
        expect(yield* Effect.flip(Fiber.join(sleeper))).toMatchObject({ _tag: "ShellInterrupted", command: "sleep 300" })
        expect(yield* shell.succeed("echo alive")).toBe("alive\n")
      }))

    it.effect("agent: exec, info, and a file round trip checked from both sides", () =>
      Effect.gen(function*() {
        const { agent, shell } = yield* Guest
        // The generated types are from the schema of the agent the guest runs: nothing unknown, nothing missing
        // but what this agent has disabled by build (the fs-freeze family needs a frozen-capable build).
        const check = yield* agent.checkCommands
        // Debian's 1:7.2+dfsg-... reports 7.2.x.
        expect(check.version.startsWith(linuxGuest!.packages["qemu-guest-agent"]!.replace(/^\d+:/, "").replace(/[+~-].*$/, ""))).toBe(true)
        expect(check.unknownToSchema).toEqual([])
        expect(check.unavailable).not.toContain("guest-exec")
        yield* agent.ping()
        const uname = yield* agent.exec("/bin/uname", ["-r"])
        expect(uname.exitCode).toBe(0)
        expect(Buffer.from(uname.stdout).toString()).toBe(yield* shell.succeed("uname -r"))
        const cat = yield* agent.exec("/bin/cat", [], { input: "from the host\n" })
        expect(Buffer.from(cat.stdout).toString()).toBe("from the host\n")
        const failing = yield* agent.exec("/bin/sh", ["-c", "echo bad >&2; exit 7"])
        expect(failing).toMatchObject({ exitCode: 7 })
        expect(Buffer.from(failing.stderr).toString()).toBe("bad\n")

        // An emulated UART moves some 50 KB/s under TCG: the multi-chunk transfer is the virtio test's.
        const data = NodeCrypto.randomBytes(64 * 1024)
        yield* agent.writeFile("/tmp/blob", data)
        expect(yield* shell.succeed("md5sum /tmp/blob")).toBe(`${md5(data)}  /tmp/blob\n`)
        expect(md5(yield* agent.readFile("/tmp/blob"))).toBe(md5(data))
        const missing = yield* Effect.flip(agent.readFile("/no/such"))
        expect(missing).toMatchObject({ reason: "Command", command: "guest-file-open" })
      }))

    it.effect("the agent restarts in the guest: the next request resyncs by itself", () =>
      Effect.gen(function*() {
        const { agent, shell } = yield* Guest
        yield* agent.execute("guest-ping")
        yield* shell.succeed("pid=$(pidof qemu-ga); kill $pid; while kill -0 $pid 2>/dev/null; do sleep 0.05; done")
        // While it is down, a request times out (its bytes are lost on the serial port)...
        const down = yield* Effect.flip(agent.execute("guest-ping", {}, { timeout: "1 second" }))
        expect(down.reason).toBe("Timeout")
        yield* shell.succeed("qemu-ga -m isa-serial -p /dev/ttyS1 -f /var/run/qemu-ga.pid -t /var/run -d")
        // ...and once it is back, requests work again.
        const exec = yield* agent.exec("/bin/echo", ["back"], { timeout: "30 seconds" })
        expect(Buffer.from(exec.stdout).toString()).toBe("back\n")
      }))
  })

  layer(bootedGuest("virtio-serial"), { excludeTestServices: true, timeout: "180 seconds" })("agent over virtio-serial", (it) => {
    it.effect("exec and files over the virtio port, then guest-shutdown powers the machine off", () =>
      Effect.gen(function*() {
        const { agent, vm } = yield* Guest
        const os = yield* agent.osInfo
        expect(os["kernel-release"]).toMatch(/cloud-amd64/)
        // Three 1 MiB chunks each way.
        const data = NodeCrypto.randomBytes(2 * 1024 * 1024 + 12345)
        yield* agent.writeFile("/tmp/blob", data)
        const sum = yield* agent.exec("/bin/busybox", ["md5sum", "/tmp/blob"])
        expect(Buffer.from(sum.stdout).toString()).toBe(`${md5(data)}  /tmp/blob\n`)
        expect(md5(yield* agent.readFile("/tmp/blob"))).toBe(md5(data))
        const qmp = yield* vm.qmp
        yield* agent.shutdown()
        // The agent does not answer guest-shutdown: the machine's SHUTDOWN event is the answer.
        const event = yield* qmp.eventWait("SHUTDOWN", { timeout: "60 seconds" })
        expect(event.data).toMatchObject({ guest: true, reason: "guest-shutdown" })
        yield* vm.wait("30 seconds")
        expect(yield* vm.exitCode).toEqual(Option.some(0))
      }))
  })

  layer(
    Layer.scoped(
      Machine.Machine,
      Effect.gen(function*() {
        // The agent's chardev is QEMU's listening socket, so clients can come and go.
        const config = LinuxGuest.machineConfig(linuxGuest!, { agent: "isa-serial" }, { baseTempDir: base })
        const args = [
          ...config.args!,
          "-chardev", `socket,id=qgau,path=${agentPath},server=on,wait=off`,
          "-device", "isa-serial,chardev=qgau,index=1"
        ]
        return yield* Machine.launch({ ...config, guestAgent: undefined, args })
      })
    ),
    { excludeTestServices: true, timeout: "180 seconds" }
  )("reconnecting clients", (it) => {
    it.effect("a client that left half a request and an unread answer: the next one resyncs past them", () =>
      Effect.gen(function*() {
        // The first client waits for the agent, then goes away.
        yield* Effect.scoped(Effect.flatMap(GuestAgent.connect(agentPath, { timeout: "120 seconds" }), (agent) => agent.ping()))
        // A raw client: a whole request whose answer it never reads, then half of one, then it is gone.
        yield* Effect.async<void>((resume) => {
          const socket = NodeNet.createConnection(agentPath, () => {
            socket.end(
              '{"execute":"guest-info"}{"execute":"guest-exec","arguments":{"path":"/bin/touch","arg":["/tmp/stale"',
              () => resume(Effect.void)
            )
          })
        })
        const agent = yield* GuestAgent.connect(agentPath, { timeout: "30 seconds" })
        const ls = yield* agent.exec("/bin/ls", ["/tmp"])
        expect(ls.exitCode).toBe(0)
        // The half request was dropped, not completed by what the new client sent.
        expect(Buffer.from(ls.stdout).toString()).not.toContain("stale")
        const check = yield* agent.exec("/bin/echo", ["fine"])
        expect(Buffer.from(check.stdout).toString()).toBe("fine\n")
      }).pipe(Effect.scoped))
  })

  layer(
    Layer.scoped(
      Machine.Machine,
      Effect.gen(function*() {
        const vm = yield* Machine.launch(LinuxGuest.machineConfig(linuxGuest!, { login: true }, { baseTempDir: base }))
        return vm
      })
    ),
    { excludeTestServices: true, timeout: "180 seconds" }
  )("login at a getty", (it) => {
    it.effect("a wrong password fails at once with ConsoleFailure; the right one gives a shell", () =>
      Effect.gen(function*() {
        const vm = yield* Machine.Machine
        const console = yield* vm.console
        yield* console.waitFor("login:", { timeout: "120 seconds" })
        const wrong = yield* Effect.flip(ShellSession.login(console, { user: "root", password: "wrong" }, { timeout: "30 seconds" }))
        expect(wrong).toMatchObject({ _tag: "ConsoleFailure", match: "Login incorrect" })
        const shell = yield* ShellSession.login(console, { user: "root", password: "root" }, { timeout: "30 seconds" })
        expect(yield* shell.succeed("id -u")).toBe("0\n")
      }))
  })
})
