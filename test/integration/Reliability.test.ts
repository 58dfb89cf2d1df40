import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Machine from "../../src/Machine.js"
import { childPids, describeQemu, isAlive, leftovers, makeBaseDir, noneMachine } from "../helpers.js"

const cmdline = (pid: number) => NodeFs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1)

/** The local addresses of listening TCP sockets on `port`, as /proc/net/tcp spells them. */
const listeners = (port: number) =>
  NodeFs.readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1).map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 3 && f[3] === "0A" && parseInt(f[1]!.split(":")[1]!, 16) === port)
    .map((f) => f[1]!.split(":")[0])

describeQemu("orphans", () => {
  it("QEMU dies when the Node process that launched it is SIGKILLed", async () => {
    // Its temp dir stays behind (reaped by the next launch in that base dir); keep it in one the test removes.
    const base = makeBaseDir("orphan")
    const child = spawn("node", ["--import", "tsx", NodePath.join(__dirname, "../fixtures/orphan-child.ts"), base], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    const pid = await new Promise<number>((resolve, reject) => {
      let out = ""
      child.stdout.on("data", (d) => {
        out += String(d)
        if (out.includes("\n")) resolve(Number(out.trim()))
      })
      child.on("exit", () => reject(new Error("child exited before launching")))
    })
    expect(isAlive(pid)).toBe(true)
    child.kill("SIGKILL")
    const deadline = Date.now() + 5000
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(isAlive(pid)).toBe(false)
  }, 30_000)
})

describeQemu("security", () => {
  it.live("arguments with spaces, quotes and ';' reach QEMU verbatim (no shell)", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("argv")
      const name = `a b; echo pwned > /tmp/pwned-${process.pid} 'q' "dq" $HOME \`id\``
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, { args: ["-nodefaults", "-name", name] }))
        expect(cmdline(vm.pid).slice(-2)).toEqual(["-name", name])
        expect(yield* vm.execute("query-name")).toEqual({ name })
      }))
      expect(NodeFs.existsSync(`/tmp/pwned-${process.pid}`)).toBe(false)
      expect(leftovers(base)).toEqual([])
    }))

  it.live("the temp dir is 0700, the log 0600, and path sockets live inside the private dir", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("modes")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, {
          monitor: { _tag: "UnixPath" },
          console: { transport: "UnixPath" }
        }))
        expect(NodeFs.statSync(vm.tempDir).mode & 0o777).toBe(0o700)
        expect(NodeFs.statSync(vm.logPath).mode & 0o777).toBe(0o600)
        const sockets = NodeFs.readdirSync(vm.tempDir).filter((f) => f.endsWith(".sock"))
        expect(sockets.length).toBe(2)
        for (const socket of sockets) expect(NodeFs.statSync(NodePath.join(vm.tempDir, socket)).isSocket()).toBe(true)
      }))
      expect(leftovers(base)).toEqual([])
    }))

  it.live("a TCP monitor listens on loopback only, unless asked otherwise", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("tcp-loopback")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, { monitor: { _tag: "Tcp" } }))
        const port = Number(/port=(\d+)/.exec(vm.command.join(" "))![1])
        expect(vm.command.join(" ")).toContain(`host=127.0.0.1,port=${port}`)
        expect(listeners(port)).toEqual(["0100007F"])
        expect(yield* vm.execute("query-status")).toMatchObject({ running: true })
      }))
      expect(childPids()).toEqual([])
    }))
})
