import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { redactArgv } from "../../src/internal/redact.js"
import { buildArgs, buildCommand } from "../../src/MachineConfig.js"
import { checkSocketPath, MAX_SOCKET_PATH_BYTES } from "../../src/TempFiles.js"
import * as UserNetwork from "../../src/UserNetwork.js"

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

  it("doubles commas in paths and notes, as QEMU's option parser wants", () => {
    const args = buildArgs(
      { console: {}, addFds: [{ fd: 9, fdset: 2, opaque: "note,set=7" }] },
      {
        monitor: { _tag: "UnixPath", path: "/t,a/vm,1-monitor.sock" },
        console: { _tag: "UnixPath", path: "/t,a/vm,1-console.sock" },
        addFdNumbers: [5]
      }
    )
    expect(args).toContain("socket,id=mon,path=/t,,a/vm,,1-monitor.sock")
    expect(args).toContain("socket,id=console,path=/t,,a/vm,,1-console.sock,server=on,wait=off")
    expect(args).toContain("fd=5,set=2,opaque=note,,set=7")
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

describe("redactArgv", () => {
  it("hides a secret object's data, in option and JSON form, and password-like values", () => {
    expect(redactArgv([
      "qemu-system-x86_64",
      "-object", "secret,id=s0,data=hunter2,format=raw",
      "-object", "{\"qom-type\":\"secret\",\"id\":\"s1\",\"data\":\"hunter2\"}",
      "-drive", "file=iscsi://h/t/0,file.password=hunter2,if=none",
      "-spice", "port=5900,password=hunter2",
      "-fw_cfg", "name=opt/x,string=data=not-a-secret",
      "-object", "secret,id=s2,file=/run/key,,with,,commas"
    ])).toEqual([
      "qemu-system-x86_64",
      "-object", "secret,id=s0,data=<redacted>,format=raw",
      "-object", "{\"qom-type\":\"secret\",\"id\":\"s1\",\"data\":\"<redacted>\"}",
      "-drive", "file=iscsi://h/t/0,file.password=<redacted>,if=none",
      "-spice", "port=5900,password=<redacted>",
      "-fw_cfg", "name=opt/x,string=data=not-a-secret",
      "-object", "secret,id=s2,file=/run/key,,with,,commas"
    ])
  })
})

describe("userNetwork", () => {
  it("builds one -nic user with the forwards, loopback unless asked", () => {
    const args = buildArgs({
      userNetwork: {
        forwards: [
          { guestPort: 22 },
          { guestPort: 8080, hostPort: 18080, hostAddress: "0.0.0.0", guestAddress: "10.0.2.20" },
          { guestPort: 53, protocol: "udp" }
        ],
        opts: "restrict=on"
      }
    }, {})
    const nic = args.indexOf("-nic")
    expect(args[nic + 1]).toBe(
      "user,hostfwd=tcp:127.0.0.1:0-:22,hostfwd=tcp:0.0.0.0:18080-10.0.2.20:8080,hostfwd=udp:127.0.0.1:0-:53,restrict=on"
    )
    expect(args.filter((a) => a === "-nic")).toHaveLength(1)
  })

  it("parses the host forwards out of info usernet", () => {
    const text = [
      "Hub -1 (#net000):",
      "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ",
      "  TCP[HOST_FORWARD]  13       127.0.0.1 37311       10.0.2.15    22     0     0",
      "  UDP[HOST_FORWARD]  14         0.0.0.0 41000       10.0.2.15    53     0     0",
      "  TCP[ESTABLISHED]   15       10.0.2.15 51234   93.184.216.34    80     0     0",
      ""
    ].join("\r\n")
    expect(UserNetwork.parseUsernet(text)).toEqual([
      { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 37311, guestAddress: "10.0.2.15", guestPort: 22 },
      { protocol: "udp", hostAddress: "0.0.0.0", hostPort: 41000, guestAddress: "10.0.2.15", guestPort: 53 }
    ])
  })
})
