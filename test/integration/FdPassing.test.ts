/**
 * Passing descriptors to a real QEMU: `-add-fd` at launch, and SCM_RIGHTS on
 * the QMP socket (`sendFdScm`, `getfd`, `addFd`) over the socket-pair and the
 * path monitor. What QEMU holds is checked in its own /proc/PID/fd and by
 * reading a drive opened from `/dev/fdset/N`.
 */
import { expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Machine from "../../src/Machine.js"
import {
  childPids,
  describeQemu,
  leftovers,
  makeBaseDir,
  noneMachine
} from "../helpers.js"


/** A 4 KiB file whose first bytes are `text`, in a directory of its own. */
const dataFile = (label: string, text: string): string => {
  const dir = makeBaseDir(`fd-${label}`)
  const file = NodePath.join(dir, `${label}.img`)
  const content = Buffer.alloc(4096)
  content.write(text)
  NodeFs.writeFileSync(file, content)
  return file
}

/** What QEMU's descriptor `fd` points at, from its /proc. */
const qemuFdTarget = (pid: number, fd: number): string => NodeFs.readlinkSync(`/proc/${pid}/fd/${fd}`)

/**
 * Opens `/dev/fdset/<set>` as a read-only raw drive and reads its first 16
 * bytes with HMP `qemu-io`. QEMU 7.2's qemu-io prints to QEMU's stdout, which
 * is the machine's log: the hex dump is read back from there.
 */
const readDriveFromFdset = (vm: Machine.MachineService, set: number, node: string) =>
  Effect.gen(function*() {
    yield* vm.execute("blockdev-add", {
      driver: "raw",
      "node-name": node,
      "read-only": true,
      file: { driver: "file", filename: `/dev/fdset/${set}`, locking: "off" }
    })
    const before = (yield* vm.log).length
    yield* (yield* vm.qmp).hmp(`qemu-io ${node} "read -v 0 16"`)
    // `00000000:  66 69 72 ...  first.file.bytes`: decode the hex bytes.
    const dump = /^00000000: ((?: [0-9a-f]{2}){16})/m.exec((yield* vm.log).slice(before))
    return dump === null ? "" : Buffer.from(dump[1]!.replaceAll(" ", ""), "hex").toString("latin1")
  })

describeQemu("passing file descriptors (real QEMU)", () => {
  it.live("-add-fd at launch: a path and an open fd show in query-fdsets, and a drive reads the file", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("addfd")
      const first = dataFile("first", "first-file-bytes")
      const second = dataFile("second", "second-file-byte")
      const secondFd = NodeFs.openSync(second, "r")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, {
          addFds: [
            { path: first, fdset: 1, opaque: "by-path" },
            { fd: secondFd, fdset: 2, opaque: "by-fd" }
          ]
        }))
        // The argv names the numbers the launch chose.
        expect(vm.command.filter((a) => a.startsWith("fd="))).toHaveLength(2)
        const sets = yield* vm.execute("query-fdsets")
        const byId = new Map(sets.map((set) => [set["fdset-id"], set.fds]))
        expect(byId.get(1)?.[0]?.opaque).toBe("by-path")
        expect(byId.get(2)?.[0]?.opaque).toBe("by-fd")
        expect(qemuFdTarget(vm.pid, byId.get(1)![0]!.fd)).toBe(first)
        expect(qemuFdTarget(vm.pid, byId.get(2)![0]!.fd)).toBe(second)
        expect(yield* readDriveFromFdset(vm, 1, "d1")).toBe("first-file-bytes")
        expect(yield* readDriveFromFdset(vm, 2, "d2")).toBe("second-file-byte")
      }))
      // The caller's descriptor is still the caller's.
      expect(() => NodeFs.fstatSync(secondFd)).not.toThrow()
      NodeFs.closeSync(secondFd)
      expect(childPids()).toEqual([])
      expect(leftovers(base)).toEqual([])
    }))

  it.live("-add-fd with a missing path or a closed descriptor fails the launch with a Setup error", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("addfd-bad")
      const missing = yield* Effect.exit(Effect.scoped(
        Machine.launch(noneMachine(base, { addFds: [{ path: "/nonexistent/disk.img", fdset: 1 }] }))
      ))
      expect(missing).toMatchObject(Exit.fail({ _tag: "VMLaunchFailure", reason: "Setup" }))
      if (Exit.isFailure(missing)) expect(String(missing.cause)).toContain("/nonexistent/disk.img")

      // A number far above anything open (a just-closed one would be reused by the launch's own log file).
      const closed = yield* Effect.exit(Effect.scoped(Machine.launch(noneMachine(base, { addFds: [{ fd: 9999, fdset: 1 }] }))))
      expect(closed).toMatchObject(Exit.fail({ _tag: "VMLaunchFailure", reason: "Setup" }))
      expect(childPids()).toEqual([])
      expect(leftovers(base)).toEqual([])
    }))

  for (const monitor of ["SocketPair", "UnixPath"] as const) {
    it.live(`SCM_RIGHTS over the ${monitor} monitor: getfd names it, add-fd puts it in a set`, () =>
      Effect.gen(function*() {
        const base = makeBaseDir(`scm-${monitor}`)
        const file = dataFile(`scm-${monitor}`, "passed-over-scm!")
        yield* Effect.scoped(Effect.gen(function*() {
          const vm = yield* Machine.launch(noneMachine(base, { monitor: { _tag: monitor } }))
          const before = NodeFs.readdirSync(`/proc/${vm.pid}/fd`).length

          // getfd: QEMU keeps the descriptor under the name until closefd.
          yield* (yield* vm.qmp).getfd("by-name", { path: file })
          expect(NodeFs.readdirSync(`/proc/${vm.pid}/fd`).length).toBe(before + 1)
          yield* vm.execute("closefd", { fdname: "by-name" })
          expect(NodeFs.readdirSync(`/proc/${vm.pid}/fd`).length).toBe(before)

          // add-fd: into a chosen set, then a drive reads the file through it.
          const info = yield* (yield* vm.qmp).addFd({ path: file }, { fdsetId: 7, opaque: "scm" })
          expect(info["fdset-id"]).toBe(7)
          expect(qemuFdTarget(vm.pid, info.fd)).toBe(file)
          const sets = yield* vm.execute("query-fdsets")
          expect(sets).toEqual([{ "fdset-id": 7, fds: [{ fd: info.fd, opaque: "scm" }] }])
          expect(yield* readDriveFromFdset(vm, 7, "scm")).toBe("passed-over-scm!")

          // The seed's two steps: send_fd_scm, then getfd in a command of its own.
          const fd = NodeFs.openSync(file, "r")
          yield* (yield* vm.qmp).sendFdScm(fd)
          yield* vm.execute("getfd", { fdname: "seed-style" })
          expect(() => NodeFs.fstatSync(fd)).not.toThrow()
          NodeFs.closeSync(fd)
          yield* vm.execute("closefd", { fdname: "seed-style" })
        }))
        expect(childPids()).toEqual([])
        expect(leftovers(base)).toEqual([])
      }))
  }

  it.live("descriptors passed by many fibers at once, among plain commands, each land with their own command", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("scm-many")
      const files = Array.from({ length: 12 }, (_, i) => dataFile(`many-${i}`, `file-${i}`))
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base))
        const [infos, statuses] = yield* Effect.all([
          Effect.forEach(files, (file, i) => Effect.flatMap(vm.qmp, (qmp) => qmp.addFd({ path: file }, { fdsetId: 100 + i })), {
            concurrency: "unbounded"
          }),
          Effect.forEach(files, () => vm.execute("query-status"), { concurrency: "unbounded" })
        ], { concurrency: "unbounded" })
        expect(statuses.every((s) => s.status === "running")).toBe(true)
        infos.forEach((info, i) => {
          expect(info["fdset-id"]).toBe(100 + i)
          expect(qemuFdTarget(vm.pid, info.fd)).toBe(files[i])
        })
      }))
      expect(childPids()).toEqual([])
    }))

  it.live("a missing path, a closed descriptor and a TCP monitor give typed errors, and the session goes on", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("scm-errors")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base))
        const missing = yield* Effect.flip((yield* vm.qmp).getfd("x", { path: "/nonexistent/file" }))
        expect(missing).toMatchObject({ _tag: "FdPassingError", reason: "Open", path: "/nonexistent/file" })

        const fd = NodeFs.openSync(dataFile("scm-closed", "x"), "r")
        NodeFs.closeSync(fd)
        expect(yield* Effect.flip((yield* vm.qmp).sendFdScm(fd))).toMatchObject({ _tag: "FdPassingError", reason: "BadDescriptor" })
        expect(yield* Effect.flip((yield* vm.qmp).addFd(9999))).toMatchObject({ _tag: "FdPassingError", reason: "BadDescriptor" })
        expect(yield* Effect.flip((yield* vm.qmp).addFd(-1))).toMatchObject({ _tag: "FdPassingError", reason: "BadDescriptor" })

        // getfd with nothing passed: QEMU's own error, typed as a command error.
        expect(yield* Effect.flip(vm.execute("getfd", { fdname: "nothing" }))).toMatchObject({
          _tag: "QMPCommandError",
          command: "getfd"
        })
        expect(yield* vm.execute("query-status")).toMatchObject({ status: "running" })
      }))
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch(noneMachine(base, { monitor: { _tag: "Tcp" } }))
        const tcp = yield* Effect.flip((yield* vm.qmp).addFd({ path: dataFile("scm-tcp", "x") }))
        expect(tcp).toMatchObject({ _tag: "FdPassingError", reason: "Unsupported" })
        expect(yield* vm.execute("query-status")).toMatchObject({ status: "running" })
      }))
      expect(childPids()).toEqual([])
      expect(leftovers(base)).toEqual([])
    }))
})
