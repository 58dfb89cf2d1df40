import { describe, expect, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { describeCommands, parseCommandLine } from "../../src/cli/shell.js"
import { childPids, describeQemu, isAlive, leftovers, makeBaseDir, processesMarked } from "../helpers.js"

const root = NodePath.resolve(__dirname, "../..")
const cli = ["--import", "tsx", NodePath.join(root, "src/cli/main.ts")]

/** Live QEMU processes whose command line names this test's marker. */
const qemuWithMarker = (marker: string) =>
  spawnSync("pgrep", ["-f", `^qemu-system-x86_64 .*${marker}`], { encoding: "utf8" }).stdout.split("\n").filter((l) => l !== "").map(Number)

describeQemu("qemu-machine CLI", () => {
  it("demo boots SeaBIOS, shows the console and QMP state, and exits 0", () => {
    const result = spawnSync("node", [...cli, "demo"], { cwd: root, encoding: "utf8", timeout: 60_000 })
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/console \| SeaBIOS \(version/)
    expect(result.stdout).toContain("No bootable device")
    expect(result.stdout).toMatch(/query-status: running/)
    expect(result.stdout).toMatch(/query-version: 7\.\d+\.\d+/)
    expect(result.stdout).toMatch(/shutdown: clean, QEMU exited with code 0/)
    expect(childPids()).toEqual([])
  }, 60_000)

  it("demo explains how to install QEMU when the binary is missing", () => {
    const result = spawnSync("node", [...cli, "demo", "--qemu", "/nonexistent/qemu"], { cwd: root, encoding: "utf8" })
    expect(result.status).toBe(2)
    expect(result.stderr).toContain("apt-get install -y --no-install-recommends qemu-system-x86")
  }, 30_000)

  it("run: Ctrl-C shuts QEMU down cleanly and leaves none behind; the exit code mirrors QEMU's", async () => {
    const marker = `qm-cli-run-${process.pid}`
    const child = spawn("node", [...cli, "run", "--machine", "none", "--", "-nodefaults", "-name", marker], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += String(d)))
    const started = Date.now()
    while (!stderr.includes("Ctrl-C shuts") && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 50))
    const pids = qemuWithMarker(marker)
    expect(pids.length).toBe(1)
    child.kill("SIGINT")
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)))
    expect(code).toBe(0)
    expect(isAlive(pids[0]!)).toBe(false)
    expect(qemuWithMarker(marker)).toEqual([])
  }, 60_000)

  it("run: exits with QEMU's own exit code", () => {
    const result = spawnSync("node", [...cli, "run", "--", "-foo"], { cwd: root, encoding: "utf8", timeout: 30_000 })
    expect(result.status).toBe(1)
    expect(result.stderr).toContain("invalid option")
  }, 30_000)

  it("shell --json answers commands from stdin, one JSON line each, events included", () => {
    const input = [
      JSON.stringify({ execute: "query-status" }),
      JSON.stringify({ execute: "stop" }),
      "not json",
      JSON.stringify({ execute: "no-such-command" })
    ].join("\n") + "\n"
    const result = spawnSync("node", [...cli, "shell", "--json"], { cwd: root, encoding: "utf8", input, timeout: 30_000 })
    expect(result.status).toBe(0)
    const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines[0]).toHaveProperty("QMP")
    expect(lines).toContainEqual(expect.objectContaining({ return: expect.objectContaining({ status: "running" }) }))
    expect(lines).toContainEqual(expect.objectContaining({ event: "STOP" }))
    expect(lines).toContainEqual({ error: expect.objectContaining({ class: "ShellError" }) })
    expect(lines).toContainEqual(expect.objectContaining({ error: expect.objectContaining({ class: "CommandNotFound" }) }))
    expect(childPids()).toEqual([])
  }, 30_000)
})

/** What is left in a TMPDIR, but tsx's own compile cache. */
const ours = (tmp: string) => leftovers(tmp).filter((entry) => !entry.startsWith("tsx-"))

/** Starts `qemu-machine run` with a private TMPDIR; resolves once QEMU runs. */
const startRun = async (marker: string, tmp: string) => {
  const child = spawn("node", [...cli, "run", "--machine", "none", "--", "-nodefaults", "-name", marker], {
    cwd: root,
    env: { ...process.env, TMPDIR: tmp },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stderr = ""
  child.stderr.on("data", (d) => (stderr += String(d)))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal }))
  )
  const started = Date.now()
  while (!stderr.includes("Ctrl-C shuts") && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 20))
  return { child, exited, stderr: () => stderr }
}

describeQemu("qemu-machine CLI under signals and bad files", () => {
  it("run: SIGHUP shuts down cleanly, like SIGTERM: QEMU's exit code, nothing left", async () => {
    for (const signal of ["SIGHUP", "SIGTERM"] as const) {
      const tmp = makeBaseDir(`cli-${signal}`)
      const marker = `qm-cli-${signal}-${process.pid}`
      const run = await startRun(marker, tmp)
      expect(processesMarked(`-name ${marker}`).length).toBeGreaterThan(0)
      run.child.kill(signal)
      expect(await run.exited).toEqual({ code: 0, signal: null })
      expect(run.stderr()).toContain(`${signal}: shutting down cleanly`)
      expect(processesMarked(`-name ${marker}`)).toEqual([])
      expect(ours(tmp)).toEqual([])
    }
  }, 60_000)

  it("run: a second Ctrl-C during a slow shutdown kills QEMU at once, still cleans up, exits 130", async () => {
    const tmp = makeBaseDir("cli-double-int")
    const marker = `qm-cli-double-${process.pid}`
    const run = await startRun(marker, tmp)
    // A stopped QEMU cannot answer quit: the clean shutdown would wait 30 s.
    for (const pid of processesMarked(`-name ${marker}`)) if (pid !== run.child.pid) process.kill(pid, "SIGSTOP")
    run.child.kill("SIGINT")
    const started = Date.now()
    while (!run.stderr().includes("shutting down cleanly") && Date.now() - started < 10_000) {
      await new Promise((r) => setTimeout(r, 20))
    }
    run.child.kill("SIGINT")
    expect(await run.exited).toEqual({ code: 130, signal: null })
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(processesMarked(`-name ${marker}`)).toEqual([])
    expect(ours(tmp)).toEqual([])
  }, 60_000)

  it("--qmp-log that cannot be opened: one clear line, exit 1, nothing started or left", () => {
    const tmp = makeBaseDir("cli-qmp-log")
    for (const [command, log] of [["run", "/nonexistent/dir/qmp.log"], ["shell", tmp], ["demo", "/nonexistent/qmp.log"]]) {
      const result = spawnSync("node", [...cli, command!, "--qmp-log", log!, "--", "-machine", "none"], {
        cwd: root,
        env: { ...process.env, TMPDIR: tmp },
        encoding: "utf8",
        input: "",
        timeout: 30_000
      })
      expect(result.status).toBe(1)
      expect(result.stderr).toContain(log)
      expect(result.stderr.trim().split("\n")).toHaveLength(1)
      expect(result.stderr).not.toMatch(/\n\s+at /)
      expect(ours(tmp)).toEqual([])
    }
    expect(childPids()).toEqual([])
  }, 60_000)

  it("shell --json: a user's quit is the end (no second quit, no warning); stdout is only the protocol", () => {
    const tmp = makeBaseDir("cli-shell-quit")
    const log = NodePath.join(tmp, "qmp.log")
    const input = [JSON.stringify({ execute: "query-status", id: "mine" }), JSON.stringify({ execute: "quit" })].join("\n") + "\n"
    const result = spawnSync("node", [...cli, "shell", "--json", "--qmp-log", log], {
      cwd: root,
      env: { ...process.env, TMPDIR: tmp },
      encoding: "utf8",
      input,
      timeout: 30_000
    })
    expect(result.status).toBe(0)
    const lines = result.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines[0]).toHaveProperty("QMP")
    expect(lines).toContainEqual(expect.objectContaining({ return: expect.objectContaining({ status: "running" }), id: "mine" }))
    expect(lines).toContainEqual(expect.objectContaining({ event: "SHUTDOWN" }))
    expect(result.stderr).not.toMatch(/AbnormalShutdown|graceful/)
    const quits = NodeFs.readFileSync(log, "utf8").split("\n").filter((l) => l.includes('"direction":"send"') && l.includes('"quit"'))
    expect(quits).toHaveLength(1)
    expect(ours(tmp)).toEqual(["qmp.log"])
  }, 30_000)
})

describeQemu("qemu-machine CLI as a user meets it", () => {
  const cliRun = (args: ReadonlyArray<string>, input = "") =>
    spawnSync("node", [...cli, ...args], { cwd: root, encoding: "utf8", input, timeout: 60_000 })

  it("a bad flag is one line on stderr with where to look, exit 2; help is plain text with the usage line", () => {
    const bad = cliRun(["run", "--bogus"])
    expect(bad.status).toBe(2)
    expect(bad.stderr.trim().split("\n")).toEqual(["qemu-machine: run: unknown option --bogus; see `qemu-machine run --help`"])
    const help = cliRun(["run", "--help"])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("Usage: qemu-machine run [options] -- <qemu args>")
    expect(help.stdout).not.toContain("\x1b")
    const top = cliRun(["--help"])
    expect(top.stdout).toMatch(/doctor +check QEMU/)
  }, 30_000)

  it("errors are one line, without stack traces: a missing QEMU, a refused connection", () => {
    const missing = cliRun(["shell", "--qemu", "/nonexistent/qemu"])
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain("/nonexistent/qemu")
    expect(missing.stderr).not.toMatch(/\n\s+at /)
    const refused = cliRun(["shell", "--connect", `unix:${NodePath.join(makeBaseDir("cli-refused"), "none.sock")}`])
    expect(refused.status).toBe(1)
    expect(refused.stderr.trim().split("\n")).toHaveLength(1)
    expect(refused.stderr).toContain("cannot open QMP transport")
  }, 30_000)

  it("shell reads a pipe like qmp-shell: key=value with dotted keys and typed values, help, quit ends it", () => {
    const tmp = makeBaseDir("cli-shell-pipe")
    const log = NodePath.join(tmp, "qmp.log")
    const input = [
      "blockdev-add driver=null-co node-name=n0 read-only=true size=1048576",
      "help blockdev-add",
      "query-named-block-nodes flat=true",
      "blockdev-add driver=raw node-name=r0 file.driver=null-co file.size=4096",
      "quit",
      "query-status"
    ].join("\n") + "\n"
    const result = spawnSync("node", [...cli, "shell", "--qmp-log", log], { cwd: root, encoding: "utf8", input, timeout: 30_000 })
    expect(result.status).toBe(0)
    expect(result.stdout).toContain("cache.direct (optional): boolean")
    expect(result.stdout).toContain('"node-name": "n0"')
    expect(result.stdout).toContain("<- SHUTDOWN")
    const sent = NodeFs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { direction: string; message: { execute?: string; arguments?: unknown } })
      .filter((l) => l.direction === "send").map((l) => l.message)
    expect(sent).toContainEqual(expect.objectContaining({
      execute: "blockdev-add",
      arguments: { driver: "null-co", "node-name": "n0", "read-only": true, size: 1048576 }
    }))
    expect(sent).toContainEqual(expect.objectContaining({
      execute: "blockdev-add",
      arguments: { driver: "raw", "node-name": "r0", file: { driver: "null-co", size: 4096 } }
    }))
    // The user's quit ended the session: no second quit, and the line after it was not sent.
    expect(sent.filter((m) => m.execute === "quit")).toHaveLength(1)
    expect(sent.map((m) => m.execute)).not.toContain("query-status")
    expect(childPids()).toEqual([])
  }, 30_000)

  it("doctor: every check passes here (exit 0), a missing QEMU fails it (exit 1)", () => {
    const ok = cliRun(["doctor", "--json"])
    expect(ok.status).toBe(0)
    const checks = (JSON.parse(ok.stdout) as { checks: Array<{ name: string; status: string }> }).checks
    expect(checks.map((c) => c.name)).toEqual(["qemu", "setpriv", "native helper", "temp dir", "kvm"])
    expect(checks.filter((c) => c.name !== "kvm").every((c) => c.status === "ok")).toBe(true)
    const missing = cliRun(["doctor", "--qemu", "/nonexistent/qemu"])
    expect(missing.status).toBe(1)
    expect(missing.stdout).toMatch(/^fail {2}qemu: /m)
  }, 60_000)

  it("doctor decides KVM from a guest that runs: an accelerator that starts but runs nothing is a warning", () => {
    // A stand-in that starts QEMU frozen (-S) whenever KVM is asked for: /dev/kvm opens, no guest code runs.
    const dir = makeBaseDir("cli-frozen-kvm")
    const frozen = NodePath.join(dir, "qemu-frozen-under-kvm")
    NodeFs.writeFileSync(frozen, '#!/bin/sh\ncase " $* " in *" -accel kvm "*) exec qemu-system-x86_64 "$@" -S;; esac\nexec qemu-system-x86_64 "$@"\n', { mode: 0o755 })
    const result = cliRun(["doctor", "--json", "--qemu", frozen])
    const kvm = (JSON.parse(result.stdout) as { checks: Array<{ name: string; status: string; detail: string }> }).checks
      .find((c) => c.name === "kvm")!
    expect(kvm.status).toBe("warn")
    expect(kvm.detail).toMatch(/did not run|not usable/)
    expect(result.status).toBe(0)
    expect(cliRun(["doctor", "--strict", "--qemu", frozen]).status).toBe(1)
  }, 60_000)
})

describe("shell command lines", () => {
  it("parses as qmp-shell: dotted keys nest, integers and true/false are typed, quotes group, JSON values", () => {
    expect(parseCommandLine(`blockdev-add driver=raw file.driver=file file.filename="/tmp/a b" read-only=TRUE x=[1,2]`)).toEqual({
      command: "blockdev-add",
      args: { driver: "raw", file: { driver: "file", filename: "/tmp/a b" }, "read-only": true, x: [1, 2] }
    })
    expect(parseCommandLine('{"execute": "query-status", "arguments": {}}')).toEqual({ command: "query-status", args: {} })
    expect(parseCommandLine("cmd a=1 a.b=2")).toBe('cannot use "a" as both leaf and non-leaf key')
    expect(parseCommandLine("cmd a=1 a=2")).toBe('cannot set "a" twice')
    expect(parseCommandLine("cmd a='x")).toBe("unterminated ' quote")
  })

  it("reads commands and argument names (nested ones dotted) from the QAPI schema, for help and completion", () => {
    const schema = NodeFs.readFileSync(NodePath.join(root, "qapi/qmp-schema.json"), "utf8")
    const commands = describeCommands((JSON.parse(schema) as { schema: unknown }).schema)
    expect(commands.get("query-status")).toEqual([])
    const blockdevAdd = commands.get("blockdev-add")!.map((a) => a.name)
    expect(blockdevAdd).toEqual(expect.arrayContaining(["driver", "node-name", "cache.direct", "read-only"]))
    expect(commands.get("human-monitor-command")).toEqual(expect.arrayContaining([
      { name: "command-line", type: "string", optional: false }
    ]))
  })

  it("parses a bare command, JSON arguments and key=value pairs", () => {
    expect(parseCommandLine("query-status")).toEqual({ command: "query-status" })
    expect(parseCommandLine('blockdev-add {"driver": "null-co", "node-name": "n0"}')).toEqual({
      command: "blockdev-add",
      args: { driver: "null-co", "node-name": "n0" }
    })
    expect(parseCommandLine("human-monitor-command command-line=info size=3 on=true")).toEqual({
      command: "human-monitor-command",
      args: { "command-line": "info", size: 3, on: true }
    })
    expect(typeof parseCommandLine("cmd {bad")).toBe("string")
    expect(typeof parseCommandLine("cmd novalue")).toBe("string")
  })
})
