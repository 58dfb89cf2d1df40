import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { buildArgs, buildCommand } from "../../src/MachineConfig.js"
import { checkSocketPath, MAX_SOCKET_PATH_BYTES } from "../../src/TempFiles.js"

const fdMonitor = { monitor: { _tag: "Fd", fd: 3 } } as const

describe("buildArgs", () => {
  it("starts with the base arguments and the socket-pair monitor", () => {
    expect(buildArgs({}, fdMonitor)).toEqual([
      "-display", "none", "-vga", "none",
      "-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control"
    ])
  })

  it("names a unix path monitor and a TCP monitor", () => {
    expect(buildArgs({}, { monitor: { _tag: "UnixPath", path: "/t/vm-monitor.sock" } })).toContain(
      "socket,id=mon,path=/t/vm-monitor.sock"
    )
    expect(buildArgs({}, { monitor: { _tag: "Tcp", host: "127.0.0.1", port: 4444 } })).toContain(
      "socket,id=mon,host=127.0.0.1,port=4444"
    )
  })

  it("leaves the monitor out when QMP is off (set_qmp_monitor(False))", () => {
    expect(buildArgs({ qmp: false }, fdMonitor)).toEqual(["-display", "none", "-vga", "none"])
  })

  it("adds -monitor null, -machine and -accel", () => {
    expect(buildArgs({ qmp: false, monitorNull: true, machineType: "q35", accel: "tcg" }, {})).toEqual([
      "-display", "none", "-vga", "none", "-monitor", "null", "-machine", "q35", "-accel", "tcg"
    ])
  })

  it("wires the console as set_console: index-1 null serials first, default -serial chardev:console", () => {
    expect(buildArgs({ qmp: false, console: { index: 2 } }, { console: { _tag: "Fd", fd: 4 } })).toEqual([
      "-display", "none", "-vga", "none",
      "-serial", "null", "-serial", "null",
      "-chardev", "socket,id=console,fd=4", "-serial", "chardev:console"
    ])
  })

  it("uses a console device type and the seed's path socket when asked", () => {
    expect(
      buildArgs(
        { qmp: false, console: { deviceType: "isa-serial", transport: "UnixPath" } },
        { console: { _tag: "UnixPath", path: "/t/c.sock" } }
      )
    ).toEqual([
      "-display", "none", "-vga", "none",
      "-chardev", "socket,id=console,path=/t/c.sock,server=on,wait=off",
      "-device", "isa-serial,chardev=console"
    ])
  })

  it("names -add-fd entries with the inherited numbers, options appended", () => {
    expect(
      buildArgs(
        {
          qmp: false,
          addFds: [{ fd: 17, fdset: 1, opaque: "disk" }, { fd: 18, fdset: 2, opaque: "ro", opts: "readonly=on" }]
        },
        { addFdNumbers: [5, 6] }
      )
    ).toEqual([
      "-display", "none", "-vga", "none",
      "-add-fd", "fd=5,set=1,opaque=disk",
      "-add-fd", "fd=6,set=2,opaque=ro,readonly=on"
    ])
  })

  it("puts the user's arguments last, verbatim", () => {
    const args = ["-name", "a b; rm -rf /", "-append", "console=ttyS0 'quoted'"]
    expect(buildArgs({ qmp: false, args }, {}).slice(-4)).toEqual(args)
  })
})

describe("buildCommand", () => {
  it("prefixes wrapper and binary", () => {
    expect(buildCommand({ qmp: false, wrapper: ["taskset", "-c", "1"], binary: "/opt/qemu" }, {}).slice(0, 4)).toEqual([
      "taskset", "-c", "1", "/opt/qemu"
    ])
    expect(buildCommand({ qmp: false }, {})[0]).toBe("qemu-system-x86_64")
  })
})

describe("checkSocketPath", () => {
  it.effect("accepts a path of 107 bytes and rejects 108", () =>
    Effect.gen(function*() {
      const ok = "/" + "a".repeat(MAX_SOCKET_PATH_BYTES - 1)
      expect(yield* checkSocketPath(ok)).toBe(ok)
      const error = yield* Effect.flip(checkSocketPath(ok + "b"))
      expect(error).toMatchObject({ _tag: "SocketPathTooLong", length: 108, limit: 107 })
    }))

  it.effect("counts bytes, not characters", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(checkSocketPath("/" + "é".repeat(60)))
      expect(error.length).toBe(121)
    }))
})
