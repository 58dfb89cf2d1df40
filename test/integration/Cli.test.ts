import { describe, expect, it } from "@effect/vitest"
import { spawn, spawnSync } from "node:child_process"
import * as NodePath from "node:path"
import { parseCommandLine } from "../../src/cli/shell.js"
import { childPids, describeQemu, isAlive } from "../helpers.js"

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

describe("shell command lines", () => {
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
