import { expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Machine from "../../src/Machine.js"
import * as QmpClient from "../../src/QmpClient.js"
import {
  awaitSuspended,
  captureWarnings,
  childPids,
  describeQemu,
  expectClean,
  isAlive,
  leftovers,
  makeBaseDir,
  noneMachine
} from "../helpers.js"



const sleep = (millis: number) => Effect.sleep(Duration.millis(millis))

describeQemu("Machine lifecycle (real QEMU)", () => {
  it.live("launches, answers QMP, and shuts down cleanly with nothing left", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("launch")
      const { value: info, warnings } = yield* captureWarnings(Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base))
        expect(yield* vm.isRunning).toBe(true)
        expect(isAlive(vm.pid)).toBe(true)
        expect(NodeFs.statSync(vm.tempDir).mode & 0o777).toBe(0o700)
        expect(yield* vm.execute("query-status")).toMatchObject({ status: "running" })
        expect(yield* vm.execute("query-version")).toMatchObject({ qemu: { major: 7 } })
        // The handshake was waited for last: the client the machine hands out has its result.
        const qmp = yield* vm.qmp
        expect(qmp.greeting.QMP.version.qemu.major).toBe(7)
        expect(qmp.capabilities).toEqual([])
        yield* vm.shutdown()
        expect(yield* vm.state).toBe("stopped")
        expect(yield* vm.exitCode).toEqual(Option.some(0))
        // A second shutdown is a no-op.
        yield* vm.shutdown()
        expect(NodeFs.existsSync(vm.tempDir)).toBe(false)
        return { pid: vm.pid }
      })))
      expect(warnings).toEqual([])
      expectClean(base, info.pid)
    }))

  it.live("leaving the scope is a clean shutdown", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("scope")
      const { value: vm, warnings } = yield* captureWarnings(
        Effect.scoped(Effect.map(Machine.launch(noneMachine(base)), (vm) => vm))
      )
      expect(yield* vm.state).toBe("stopped")
      expect(yield* vm.exitStatus).toEqual(Option.some({ exitCode: 0, signal: null }))
      expect(warnings).toEqual([])
      expectClean(base, vm.pid)
    }))

  it.live("a user quit counts: shutdown does not quit again and reports nothing abnormal", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("quit")
      const { warnings } = yield* captureWarnings(Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base))
        const { event } = yield* vm.executeAndWait("quit", undefined, "SHUTDOWN")
        expect(event.data).toMatchObject({ guest: false, reason: "host-qmp-quit" })
        yield* vm.shutdown()
        expect(yield* vm.exitCode).toEqual(Option.some(0))
      })))
      expect(warnings).toEqual([])
      expectClean(base)
    }))

  it.live("kill sends SIGKILL, cleans up, and does not warn about the signal", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("kill")
      const { warnings } = yield* captureWarnings(Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base))
        yield* vm.kill
        expect(yield* vm.exitStatus).toEqual(Option.some({ exitCode: null, signal: "SIGKILL" }))
        expect(yield* vm.isRunning).toBe(false)
        const error = yield* Effect.flip(vm.execute("query-status"))
        expect(error._tag).toBe("MachineStateError")
      })))
      expect(warnings).toEqual([])
      expectClean(base)
    }))

  it.live("wait returns once QEMU exits by itself (quit from a second QMP channel)", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("wait")
      const second = NodePath.join(base, "second.sock")
      const { warnings } = yield* captureWarnings(Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, { args: ["-nodefaults", "-qmp", `unix:${second},server=on,wait=off`] }))
        yield* Effect.scoped(Effect.gen(function*() {
          const other = yield* QmpClient.connect({ path: second })
          yield* other.execute("quit")
        }))
        yield* vm.wait(Duration.seconds(10))
        expect(yield* vm.exitCode).toEqual(Option.some(0))
        expect(yield* vm.state).toBe("stopped")
      })))
      expect(warnings).toEqual([])
      expectClean(base)
    }))

  it.live("shutdown of a QEMU that exited by itself, without wait, is an AbnormalShutdown (as the seed)", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("exited")
      const second = NodePath.join(base, "second.sock")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, { args: ["-nodefaults", "-qmp", `unix:${second},server=on,wait=off`] }))
        yield* Effect.scoped(Effect.flatMap(QmpClient.connect({ path: second }), (other) => other.execute("quit")))
        const qmp = yield* vm.qmp
        yield* qmp.awaitDisconnect
        const error = yield* Effect.flip(vm.shutdown())
        expect(error._tag).toBe("AbnormalShutdown")
        expect(yield* vm.exitCode).toEqual(Option.some(0))
      }))
      expectClean(base)
    }))

  it.live("a binary that does not exist is a VMLaunchFailure with nothing left", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("nobinary")
      const error = yield* Effect.scoped(Machine.launch(noneMachine(base, { binary: "/nonexistent/qemu-system-x86_64" }))).pipe(
        Effect.flip
      )
      expect(error).toMatchObject({ _tag: "VMLaunchFailure" })
      // With setpriv as the wrapper, the wrapper runs and reports the missing binary.
      expect(error._tag === "VMLaunchFailure" && ["Spawn", "Exited"]).toContain(error._tag === "VMLaunchFailure" && error.reason)
      expect(error.message).toContain("/nonexistent/qemu-system-x86_64")
      expectClean(base)
      const direct = yield* Effect.scoped(
        Machine.launch(noneMachine(base, { binary: "/nonexistent/qemu-system-x86_64", dieWithParent: false }))
      ).pipe(Effect.flip)
      expect(direct).toMatchObject({ _tag: "VMLaunchFailure", reason: "Spawn", exitCode: null })
      expect(direct.message).toContain("ENOENT")
      expectClean(base)
    }))

  it.live("a bad argument is a VMLaunchFailure with the exit code, command and QEMU's output", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("badarg")
      const error = yield* Effect.scoped(Machine.launch(noneMachine(base, { args: ["-foo"] }))).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Exited", exitCode: 1, signal: null })
      if (error._tag !== "VMLaunchFailure") throw new Error("unreachable")
      expect(error.command).toContain("-foo")
      expect(error.output).toContain("invalid option")
      expect(error.message).toContain("-foo")
      expectClean(base)
    }))

  it.live("QEMU exiting during the handshake is a VMLaunchFailure with its exit code", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("handshake")
      // Stands in for a QEMU that greets and then dies before negotiation completes.
      const greeting = JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "" }, capabilities: [] } })
      const error = yield* Effect.scoped(Machine.launch(noneMachine(base, {
        wrapper: ["sh", "-c", `printf '%s\\n' '${greeting}' >&3; echo dying >&2; exit 7`, "fake-qemu"]
      }))).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Exited", exitCode: 7 })
      if (error._tag === "VMLaunchFailure") expect(error.output).toContain("dying")
      expectClean(base)
    }))

  /** Launches a stand-in QEMU that runs `script` and never greets, with a 1 s `launchTimeout`: its error and the time taken. */
  const launchNeverGreeting = (base: string, script: string, extra: Machine.MachineConfig = {}) =>
    Effect.gen(function*() {
      const started = Date.now()
      const error = yield* Effect.scoped(Machine.launch(noneMachine(base, {
        wrapper: ["sh", "-c", script, "silent-qemu"],
        launchTimeout: "1 second",
        ...extra
      }))).pipe(Effect.flip)
      return { error, elapsed: Date.now() - started }
    })

  it.live("a greeting that never comes is a VMLaunchFailure after the launch timeout, process killed, output kept", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("nogreeting")
      const { elapsed, error } = yield* launchNeverGreeting(base, "echo starting but never greeting >&2; sleep 30")
      expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Timeout", exitCode: null })
      // The log lives in the temp dir: it is read before the machine's scope removes it.
      if (error._tag === "VMLaunchFailure") expect(error.output).toContain("starting but never greeting")
      expect(elapsed).toBeLessThan(8000)
      expectClean(base)
    }))

  it.live("a longer greetingTimeout in the config does not stretch launchTimeout", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("nogreeting-long")
      const { elapsed, error } = yield* launchNeverGreeting(base, "sleep 30", { qmp: { greetingTimeout: "60 seconds" } })
      expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Timeout" })
      expect(elapsed).toBeLessThan(8000)
      expectClean(base)
    }))

  it.live("SIGKILL from outside: pending and later commands fail with QMPDisconnected, shutdown reports it", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("sigkill")
      const { warnings } = yield* captureWarnings(Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base))
        process.kill(vm.pid, "SIGSTOP")
        const pending = yield* Effect.fork(vm.execute("query-status"))
        // The command is sent once the fiber waits for its reply.
        yield* awaitSuspended(pending)
        process.kill(vm.pid, "SIGKILL")
        const error = yield* Fiber.join(pending).pipe(Effect.flip)
        expect(error._tag).toBe("QMPDisconnected")
        const later = yield* Effect.flip(vm.execute("query-status"))
        expect(later._tag).toBe("QMPDisconnected")
        const shutdownError = yield* Effect.flip(vm.shutdown())
        expect(shutdownError._tag).toBe("AbnormalShutdown")
        expect(yield* vm.exitStatus).toEqual(Option.some({ exitCode: null, signal: "SIGKILL" }))
      })))
      expect(warnings.some((w) => w.includes("qemu received signal SIGKILL") && w.includes("qemu-system-x86_64"))).toBe(
        true
      )
      expectClean(base)
    }))

  it.live("SIGSTOP: shutdown with a 2 s timeout hard-kills and fails with AbnormalShutdown in about 2 s", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("sigstop")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base))
        process.kill(vm.pid, "SIGSTOP")
        const started = Date.now()
        const error = yield* Effect.flip(vm.shutdown({ timeout: "2 seconds" }))
        const took = Date.now() - started
        expect(error._tag).toBe("AbnormalShutdown")
        // The cause, said once (the message used to repeat it).
        expect(error.message.match(/still running after 2000 ms/g)?.length).toBe(1)
        expect(took).toBeGreaterThanOrEqual(1900)
        expect(took).toBeLessThan(5000)
        expect(yield* vm.exitStatus).toEqual(Option.some({ exitCode: null, signal: "SIGKILL" }))
      }))
      expectClean(base)
    }))

  it.live("interruption at any point of the launch leaves no process, temp dir or socket", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("interrupt-launch")
      for (const delay of [0, 1, 3, 5, 10, 20, 40, 80]) {
        const fiber = yield* Effect.fork(Effect.scoped(Effect.zipRight(Machine.launch(noneMachine(base)), Effect.never)))
        yield* sleep(delay)
        const exit = yield* Fiber.interrupt(fiber)
        expect(Exit.isInterrupted(exit)).toBe(true)
        expectClean(base)
      }
    }))

  it.live("interruption during the handshake kills QEMU and removes the temp dir", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("interrupt-handshake")
      const fiber = yield* Effect.fork(Effect.scoped(Machine.launch(noneMachine(base, {
        wrapper: ["sh", "-c", "sleep 30", "silent-qemu"]
      }))))
      // Spawned: the stand-in runs and the temp dir exists.
      yield* Effect.sleep("5 millis").pipe(Effect.repeat({ until: () => childPids().length >= 1 }))
      expect(leftovers(base).length).toBe(1)
      yield* Fiber.interrupt(fiber)
      expectClean(base)
    }))

  it.live("interruption with a command in flight shuts the machine down", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("interrupt-command")
      const { warnings } = yield* captureWarnings(Effect.gen(function*() {
        const inFlight = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const vm = yield* Machine.launch(noneMachine(base, { shutdownTimeout: "1 second", monitor: { _tag: "UnixPath" } }))
          process.kill(vm.pid, "SIGSTOP")
          const pending = yield* Effect.fork(vm.execute("query-status"))
          yield* awaitSuspended(pending)
          yield* Deferred.succeed(inFlight, undefined)
          return yield* Fiber.join(pending)
        })))
        yield* Deferred.await(inFlight)
        yield* Fiber.interrupt(fiber)
      }))
      // The stopped QEMU could not quit: the finalizer had to kill it and says so.
      expect(warnings.some((w) => w.includes("Could not perform graceful shutdown"))).toBe(true)
      expectClean(base)
    }))
})

describeQemu("Machine monitor transports (real QEMU)", () => {
  it.live("QMP over a unix path that QEMU connects to (the seed's default)", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("unixpath")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, { monitor: { _tag: "UnixPath" } }))
        expect(vm.command.join(" ")).toMatch(/-chardev socket,id=mon,path=\S+-monitor\.sock/)
        expect(yield* vm.execute("query-status")).toMatchObject({ running: true })
      }))
      expectClean(base)
    }))

  it.live("QMP over TCP on loopback", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("tcp")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, { monitor: { _tag: "Tcp" } }))
        expect(vm.command.join(" ")).toMatch(/-chardev socket,id=mon,host=127\.0\.0\.1,port=\d+/)
        expect(yield* vm.execute("query-status")).toMatchObject({ running: true })
      }))
      expectClean(base)
    }))

  it.live("without QMP the machine still launches and shuts down (by SIGKILL, as the seed)", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("noqmp")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, { qmp: false }))
        expect(vm.command).not.toContain("-mon")
        expect((yield* Effect.flip(vm.execute("query-status")))._tag).toBe("MachineStateError")
        yield* vm.shutdown({ timeout: "1 second" }).pipe(Effect.ignore)
        expect(yield* vm.isRunning).toBe(false)
      }))
      expectClean(base)
    }))

  it.live("a socket path over the AF_UNIX limit is a SocketPathTooLong, nothing left", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("longpath")
      const deep = NodePath.join(base, "x".repeat(120))
      const error = yield* Effect.scoped(
        Machine.launch(noneMachine(base, { monitor: { _tag: "UnixPath", path: NodePath.join(deep, "qmp.sock") } }))
      ).pipe(Effect.flip)
      expect(error._tag).toBe("SocketPathTooLong")
      expectClean(base)
    }))

  it.live("keeps the log in logDir after shutdown, and the log has QEMU's output", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("logdir")
      const logDir = makeBaseDir("logs")
      yield* Effect.scoped(Effect.gen(function*() {
        // QEMU's "log" trace backend writes each QMP response to stderr: output the log must hold.
        const vm = yield* Machine.launch(noneMachine(base, { logDir, name: "vm1", args: ["-nodefaults", "-trace", "monitor_qmp_respond"] }))
        yield* vm.execute("query-name")
        expect(yield* vm.log).toContain("monitor_qmp_respond")
        yield* vm.shutdown()
        const log = yield* vm.log
        expect(log).toContain('resp: {"return": {}, "id": 2}')
        expect(log).toBe(NodeFs.readFileSync(NodePath.join(logDir, "vm1.log"), "utf8"))
      }))
      expect(leftovers(logDir)).toEqual(["vm1.log"])
      expect(NodeFs.statSync(NodePath.join(logDir, "vm1.log")).mode & 0o777).toBe(0o600)
      expectClean(base)
    }))
})

describeQemu("Machine.layer", () => {
  it.layer(Machine.layer({ machineType: "none", args: ["-nodefaults"] }), { timeout: 30_000 })(
    "one VM shared by a suite",
    (it) => {
      it.effect("the first test stops the shared VM", () =>
        Effect.gen(function*() {
          const vm = yield* Machine.Machine
          yield* vm.executeAndWait("stop", undefined, "STOP")
        }))
      it.effect("the second test sees the same VM, still stopped", () =>
        Effect.gen(function*() {
          const vm = yield* Machine.Machine
          expect(yield* vm.execute("query-status")).toMatchObject({ status: "paused", running: false })
        }))
    }
  )
})
