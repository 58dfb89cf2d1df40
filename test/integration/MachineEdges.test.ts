/**
 * The launch and shutdown at their edges (issue 14): what is already at a
 * path, who connects to a listener, links in a log dir, secrets in argv,
 * forking wrappers, commas in option values, floods, FIFOs, error detail.
 */
import { expect, it } from "@effect/vitest"
import { Cause, Effect, Fiber, Logger, LogLevel, Option } from "effect"
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as Net from "node:net"
import * as NodePath from "node:path"
import * as Machine from "../../src/Machine.js"
import {
  captureWarnings,
  describeQemu,
  expectClean,
  isAlive,
  leftovers,
  makeBaseDir,
  noneMachine,
  processesMarked
} from "../helpers.js"

const root = NodePath.join(__dirname, "../..")
const fakeQemu = NodePath.join(root, "test/fixtures/fake-qemu.mjs")
const hijacker = NodePath.join(root, "test/fixtures/qmp-hijacker.mjs")



let markers = 0
/** A `-name` no other process has, to find QEMU wherever it was reparented. */
const uniqueName = () => `qm-edge-${process.pid}-${++markers}`

const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer().listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A wrapper that holds QEMU back until `file` exists. */
const waitFor = (file: string) => ["sh", "-c", "while [ ! -e \"$0\" ]; do sleep 0.01; done; exec \"$@\"", file]

/** Runs the hijacker; resolves with what it received once its connection ends. */
const startHijacker = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = ChildProcess.spawn(process.execPath, [hijacker, ...args], { stdio: ["ignore", "pipe", "inherit"] })
      let out = ""
      child.stdout.on("data", (d) => (out += String(d)))
      const done = new Promise<{ received: Array<string> }>((resolve) =>
        child.on("exit", () => resolve(out === "" ? { received: ["<no report>"] } : JSON.parse(out)))
      )
      return { child, done }
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

describeQemu("launch never removes or writes through what it did not create", () => {
  it.live("a file already at the monitor path is a Setup failure naming it; the file is untouched", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("existing-path")
      const shared = makeBaseDir("existing-path-shared")
      const path = NodePath.join(shared, "qmp.sock")
      NodeFs.writeFileSync(path, "precious")
      const error = yield* Effect.scoped(Machine.launch(noneMachine(base, { monitor: { _tag: "UnixPath", path } }))).pipe(
        Effect.flip
      )
      expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Setup" })
      expect(error.message).toContain(path)
      expect(error.message).toMatch(/already exists/)
      expect(NodeFs.readFileSync(path, "utf8")).toBe("precious")
      expectClean(base)
    }))

  it.live("a second machine with the same name and sockDir fails; the first one's live socket stays", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("same-name")
      const sockDir = makeBaseDir("same-name-socks")
      const config = noneMachine(base, { name: "twin", sockDir, monitor: { _tag: "UnixPath" }, console: { transport: "UnixPath" } })
      yield* Effect.scoped(Effect.gen(function*() {
        const first = yield* Machine.launch(config)
        const before = NodeFs.readdirSync(sockDir).sort()
        expect(before).toEqual(["twin-console.sock", "twin-monitor.sock"])
        const error = yield* Effect.scoped(Machine.launch(config)).pipe(Effect.flip)
        expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Setup" })
        expect(NodeFs.readdirSync(sockDir).sort()).toEqual(before)
        expect(yield* first.execute("query-status")).toMatchObject({ running: true })
      }))
      expect(NodeFs.readdirSync(sockDir)).toEqual([])
      expectClean(base)
    }))

  it.live("a link planted at the log's name fails the launch; its target is neither emptied nor appended to", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("log-link")
      const logDir = makeBaseDir("log-link-logs")
      const target = NodePath.join(makeBaseDir("log-link-target"), "victim")
      NodeFs.writeFileSync(target, "precious")
      for (const file of ["vm1.log", "vm1-console.log"]) {
        NodeFs.symlinkSync(target, NodePath.join(logDir, file))
        const error = yield* Effect.scoped(
          Machine.launch(noneMachine(base, { logDir, name: "vm1", console: { logFile: true } }))
        ).pipe(Effect.flip)
        expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Setup" })
        expect(error.message).toContain(NodePath.join(logDir, file))
        expect(NodeFs.readFileSync(target, "utf8")).toBe("precious")
        NodeFs.unlinkSync(NodePath.join(logDir, file))
        expectClean(base)
      }
    }))

  it.live("a stale log of ours is replaced by a new private one (0600), not reopened with its old mode", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("log-stale")
      const logDir = makeBaseDir("log-stale-logs")
      const log = NodePath.join(logDir, "vm1.log")
      NodeFs.writeFileSync(log, "old run\n", { mode: 0o666 })
      NodeFs.chmodSync(log, 0o666)
      yield* Effect.scoped(Machine.launch(noneMachine(base, { logDir, name: "vm1" })))
      expect(NodeFs.statSync(log).mode & 0o777).toBe(0o600)
      expect(NodeFs.readFileSync(log, "utf8")).not.toContain("old run")
      expectClean(base)
    }))

  it.live("a FIFO with no reader as the console log fails at once (Setup), within the launch timeout", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("fifo")
      const fifo = NodePath.join(makeBaseDir("fifo-dir"), "console.fifo")
      ChildProcess.execFileSync("mkfifo", [fifo])
      const started = Date.now()
      const error = yield* Effect.scoped(
        Machine.launch(noneMachine(base, { console: { logFile: fifo }, launchTimeout: "2 seconds" }))
      ).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Setup" })
      expect(error.message).toContain(fifo)
      expect(Date.now() - started).toBeLessThan(2000)
      expectClean(base)
    }))

  it.live("a console log in a missing directory is a Setup failure before anything is spawned", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("log-missing-dir")
      const started = Date.now()
      const error = yield* Effect.scoped(
        Machine.launch(noneMachine(base, { console: { logFile: NodePath.join(base, "missing", "console.log") } }))
      ).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Setup" })
      expect(error.message).toContain("ENOENT")
      expect(error.message).not.toContain("still running")
      expect(Date.now() - started).toBeLessThan(1000)
      expectClean(base)
    }))
})

describeQemu("only the QEMU we started gets the monitor", () => {
  const cases = [
    // TCP: anyone on the machine can connect to a loopback port.
    ["TCP", (dir: string, port: number) => ({
      monitor: { _tag: "Tcp", port } as const,
      hijackerArgs: ["tcp", "127.0.0.1", String(port), NodePath.join(dir, "hijacker-connected")]
    })],
    // A unix path in a directory others can reach: the same rule.
    ["unix path in a world-writable directory", (dir: string) => {
      NodeFs.chmodSync(dir, 0o777)
      const path = NodePath.join(dir, "qmp.sock")
      return { monitor: { _tag: "UnixPath", path } as const, hijackerArgs: ["unix", path, NodePath.join(dir, "hijacker-connected")] }
    }]
  ] as const
  for (const [label, setup] of cases) {
    it.live(`${label}: a local process that connects first is refused, QEMU's connection is accepted`, () =>
      Effect.gen(function*() {
        const base = makeBaseDir("hijack")
        const shared = makeBaseDir("hijack-shared")
        const { hijackerArgs, monitor } = setup(shared, yield* freePort)
        const name = uniqueName()
        const report = yield* Effect.scoped(Effect.gen(function*() {
          const hijack = yield* startHijacker(hijackerArgs)
          yield* Effect.scoped(Effect.gen(function*() {
            const vm = yield* Machine.launch(noneMachine(base, {
              monitor,
              wrapper: waitFor(hijackerArgs[hijackerArgs.length - 1]!),
              args: ["-nodefaults", "-name", name]
            }))
            expect(yield* vm.execute("query-name")).toEqual({ name })
          }))
          return yield* Effect.promise(() => hijack.done)
        }))
        // Refused before a byte was exchanged: no command, no quit.
        expect(report.received).toEqual([])
        expect(NodeFs.readdirSync(shared).filter((f) => f.endsWith(".sock"))).toEqual([])
        expectClean(base)
      }))
  }
})

describeQemu("secrets in arguments stay out of messages and logs", () => {
  const secret = "TOPSECRET-4711"
  const args = ["-nodefaults", "-object", `secret,id=s0,data=${secret}`, "-object", `{"qom-type":"secret","id":"s1","data":"${secret}"}`]

  it.live("a launch failure's message, JSON and pretty cause are redacted; the exact argv is kept", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("secret-fail")
      const error = yield* Effect.scoped(Machine.launch(noneMachine(base, { args: [...args, "-foo"] }))).pipe(Effect.flip)
      if (error._tag !== "VMLaunchFailure") throw new Error(`unexpected ${error._tag}`)
      expect(error.reason).toBe("Exited")
      expect(error.message).toContain("data=<redacted>")
      for (const text of [error.message, String(error), JSON.stringify(error), Cause.pretty(Cause.fail(error))]) {
        expect(text).not.toContain(secret)
      }
      expect(error.argv).toContain(`secret,id=s0,data=${secret}`)
      expectClean(base)
    }))

  it.live("the warning about a signal names the command redacted", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("secret-signal")
      const { warnings } = yield* captureWarnings(Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, { args }))
        process.kill(vm.pid, "SIGKILL")
        yield* vm.shutdown().pipe(Effect.ignore)
      })))
      expect(warnings.some((w) => w.includes("signal SIGKILL"))).toBe(true)
      expect(warnings.join("\n")).not.toContain(secret)
      expectClean(base)
    }))
})

describeQemu("the launch's debug log", () => {
  it.live("names the command redacted, and only when debug logs are on", () =>
    Effect.gen(function*() {
      const secret = "TOPSECRET-0815"
      const args = ["-nodefaults", "-object", `secret,id=s0,data=${secret}`]
      const base = makeBaseDir("debug-log")
      const lines: Array<string> = []
      const logger = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => {
        lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
      }))
      const launchOnce = Effect.scoped(Effect.asVoid(Machine.launch(noneMachine(base, { args })))).pipe(Effect.provide(logger))
      yield* launchOnce
      expect(lines.filter((l) => l.startsWith("launch command:"))).toEqual([])
      yield* launchOnce.pipe(Logger.withMinimumLogLevel(LogLevel.Debug))
      const logged = lines.filter((l) => l.startsWith("launch command:"))
      expect(logged).toHaveLength(1)
      expect(logged[0]).toContain("secret,id=s0,data=<redacted>")
      expect(logged[0]).not.toContain(secret)
      expectClean(base)
    }))
})

describeQemu("no QEMU outlives its scope, whatever the wrapper", () => {
  const wrappers: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["timeout (forks and waits)", ["timeout", "600"]],
    ["sh -c (forks, no exec)", ["sh", "-c", "\"$@\"; exit $?", "sh"]]
  ]
  for (const [label, wrapper] of wrappers) {
    it.live(`${label}: kill, a stopped QEMU's hard shutdown and the scope's end leave no QEMU`, () =>
      Effect.gen(function*() {
        const base = makeBaseDir("wrapper")
        // kill
        const killed = uniqueName()
        yield* Effect.scoped(Effect.gen(function*() {
          const vm = yield* Machine.launch(noneMachine(base, { wrapper, args: ["-nodefaults", "-name", killed] }))
          expect(processesMarked(`-name ${killed}`).length).toBeGreaterThanOrEqual(1)
          yield* vm.kill
          expect(processesMarked(`-name ${killed}`)).toEqual([])
        }))
        // a stopped QEMU: the soft path times out, the hard path must reach the grandchild
        const stopped = uniqueName()
        yield* Effect.scoped(Effect.gen(function*() {
          const vm = yield* Machine.launch(noneMachine(base, { wrapper, args: ["-nodefaults", "-name", stopped] }))
          // The wrapper's command line names QEMU's arguments too: stop all but the wrapper itself.
          for (const pid of processesMarked(`-name ${stopped}`)) if (pid !== vm.pid) process.kill(pid, "SIGSTOP")
          const error = yield* Effect.flip(vm.shutdown({ timeout: "1 second" }))
          expect(error._tag).toBe("AbnormalShutdown")
          expect(processesMarked(`-name ${stopped}`)).toEqual([])
        }))
        // the scope's end after an interruption
        const interrupted = uniqueName()
        const fiber = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          yield* Machine.launch(noneMachine(base, { wrapper, args: ["-nodefaults", "-name", interrupted] }))
          return yield* Effect.never
        })))
        yield* Effect.sleep("10 millis").pipe(Effect.repeat({ until: () => processesMarked(interrupted).length > 1 }))
        yield* Fiber.interrupt(fiber)
        expect(processesMarked(`-name ${interrupted}`)).toEqual([])
        expectClean(base)
      }))
  }
})

describeQemu("commas in values built into QEMU options are escaped", () => {
  it.live("in baseTempDir, sockDir and name (path sockets and logs) and in an -add-fd opaque", () =>
    Effect.gen(function*() {
      const base = NodePath.join(makeBaseDir("commas"), "base,dir")
      const sockDir = NodePath.join(makeBaseDir("commas-socks"), "sock,dir")
      NodeFs.mkdirSync(base)
      NodeFs.mkdirSync(sockDir)
      const file = NodePath.join(base, "..", "data,file")
      NodeFs.writeFileSync(file, "x")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, {
          name: "vm,1",
          sockDir,
          monitor: { _tag: "UnixPath" },
          console: { transport: "UnixPath" },
          addFds: [{ path: file, fdset: 2, opaque: "note,set=7" }]
        }))
        const fdsets = yield* vm.execute("query-fdsets")
        expect(fdsets).toMatchObject([{ "fdset-id": 2, fds: [{ opaque: "note,set=7" }] }])
        expect(yield* vm.execute("query-status")).toMatchObject({ running: true })
      }))
      expectClean(base)
    }))

  it.live("in TMPDIR (the default base)", () =>
    Effect.gen(function*() {
      const tmp = NodePath.join(makeBaseDir("commas-tmpdir"), "tmp,dir")
      NodeFs.mkdirSync(tmp)
      const saved = process.env.TMPDIR
      process.env.TMPDIR = tmp
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"], monitor: { _tag: "UnixPath" } })
        expect(vm.tempDir.startsWith(tmp)).toBe(true)
        expect(yield* vm.execute("query-status")).toMatchObject({ running: true })
      })).pipe(Effect.ensuring(Effect.sync(() => {
        if (saved === undefined) delete process.env.TMPDIR
        else process.env.TMPDIR = saved
      })))
      expectClean(tmp)
    }))
})

describeQemu("timeouts and detail under faults", () => {
  it.live("a QEMU flooding its monitor with garbage: launchTimeout holds", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("flood")
      const started = Date.now()
      const error = yield* Effect.scoped(Machine.launch(noneMachine(base, {
        wrapper: [process.execPath, fakeQemu],
        dieWithParent: false,
        env: { FAKE_QEMU_MODE: "flood" },
        launchTimeout: "2 seconds"
      }))).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Timeout" })
      expect(Date.now() - started).toBeLessThan(3500)
      expectClean(base)
    }))

  it.live("a listen error says what failed (not [object Object]), and a Setup failure does not say 'still running'", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("listen-error")
      const path = NodePath.join(base, "missing-dir", "qmp.sock")
      const error = yield* Effect.scoped(Machine.launch(noneMachine(base, { monitor: { _tag: "UnixPath", path } }))).pipe(
        Effect.flip
      )
      expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Setup" })
      expect(error.message).toContain(`${NodePath.dirname(path)} does not exist`)
      expect(error.message).not.toContain("[object Object]")
      expect(error.message).not.toContain("still running")
      expectClean(base)
    }))

  it.live("a QEMU that closes its monitor and exits a moment later: shutdown reports its real exit code", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("close-then-exit")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, {
          wrapper: [process.execPath, fakeQemu],
          dieWithParent: false,
          env: { FAKE_QEMU_MODE: "close-then-exit" }
        }))
        const qmp = yield* vm.qmp
        yield* qmp.awaitDisconnect
        // As the seed: no quit could be sent, so the shutdown is abnormal; but QEMU was not killed.
        const error = yield* Effect.flip(vm.shutdown())
        expect(error._tag).toBe("AbnormalShutdown")
        expect(yield* vm.exitStatus).toEqual(Option.some({ exitCode: 0, signal: null }))
      }))
      expectClean(base)
    }))
})

describeQemu("temp dirs of a SIGKILLed process are reaped by the next launch", () => {
  const orphan = NodePath.join(root, "test/fixtures/orphan-child.ts")
  const startOrphan = (baseTempDir: string) =>
    Effect.async<{ child: ChildProcess.ChildProcess; qemuPid: number }>((resume) => {
      const child = ChildProcess.spawn(process.execPath, ["--import", "tsx", orphan, baseTempDir], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      let out = ""
      child.stdout!.on("data", (d) => {
        out += String(d)
        if (out.includes("\n")) resume(Effect.succeed({ child, qemuPid: Number(out.trim()) }))
      })
    })
  const waitDead = (pid: number) => Effect.sleep("10 millis").pipe(Effect.repeat({ until: () => !isAlive(pid) }))

  it.live("a dead owner's dir goes; a live owner's dir stays", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("reap")
      const dead = yield* startOrphan(base)
      dead.child.kill("SIGKILL")
      yield* waitDead(dead.child.pid!)
      yield* waitDead(dead.qemuPid)
      const stale = leftovers(base)
      expect(stale.length).toBe(1)
      const live = yield* startOrphan(base)
      const liveDirs = leftovers(base).filter((d) => !stale.includes(d))
      expect(liveDirs.length).toBe(1)
      yield* Effect.scoped(Machine.launch(noneMachine(base)))
      // The launch reaps in the background: wait for it.
      yield* Effect.sleep("10 millis").pipe(Effect.repeat({ until: () => !leftovers(base).includes(stale[0]!) }))
      expect(leftovers(base)).toEqual(liveDirs)
      live.child.kill("SIGTERM")
      yield* waitDead(live.child.pid!)
      yield* waitDead(live.qemuPid)
      expect(leftovers(base)).toEqual([])
      expectClean(base)
    }), 60_000)
})

