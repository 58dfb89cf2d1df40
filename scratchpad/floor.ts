// The floor of a launch written as plain callbacks under one Effect boundary (issue 17): temp dir, log,
// spawn, greeting, capabilities, in one Effect.async; the shutdown (quit, exit, close, remove) in one finalizer.
// Alternates bare / floor / library each round; prints medians of paired differences.
// `--bare-stdio`: the floor spawns with the bare client's stdio (stdout ignored, stderr inherited, not detached),
// to see what the stdio setup alone changes.
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import type * as Net from "node:net"
import { Effect, Scope, Exit } from "effect"
import * as Machine from "../src/Machine.js"
import { launchBare } from "../bench/bare.js"
const N = Number(process.argv[2] ?? 30)
const bareStdio = process.argv.includes("--bare-stdio")
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const args = ["-display", "none", "-vga", "none", "-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control", "-machine", "none", "-nodefaults"]
interface Core { child: ChildProcess.ChildProcess; qmp: Net.Socket; dir: string; log: number; send: (cmd: string) => Promise<void> }
const core = Effect.async<Core>((resume) => {
  const dir = NodeFs.mkdtempSync(`${NodeOs.tmpdir()}/floor-`)
  const log = NodeFs.openSync(`${dir}/q.log`, NodeFs.constants.O_WRONLY | NodeFs.constants.O_CREAT | NodeFs.constants.O_EXCL, 0o600)
  const child = ChildProcess.spawn(
    "qemu-system-x86_64",
    args,
    bareStdio ? { stdio: ["ignore", "ignore", "inherit", "pipe"] } : { stdio: ["ignore", log, log, "pipe"], detached: true }
  )
  child.on("error", () => {})
  const qmp = child.stdio[3] as Net.Socket
  let buf = ""; let greeted = false; let id = 0
  const waiting = new Map<number, () => void>()
  const send = (cmd: string) => new Promise<void>((r) => { waiting.set(++id, r); qmp.write(JSON.stringify({ execute: cmd, id })) })
  qmp.on("data", (chunk: Buffer) => {
    buf += chunk.toString("utf8")
    let nl
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl); buf = buf.slice(nl + 1)
      const m = JSON.parse(line)
      if (!greeted && "QMP" in m) { greeted = true; void send("qmp_capabilities").then(() => resume(Effect.succeed({ child, qmp, dir, log, send }))) }
      else if ("id" in m) { const w = waiting.get(m.id); waiting.delete(m.id); w?.() }
    }
  })
})
const floorLaunch = Effect.gen(function*() {
  const scope = yield* Effect.scope
  const c = yield* core
  yield* Scope.addFinalizer(scope, Effect.async<void>((resume) => {
    c.child.once("exit", () => { NodeFs.closeSync(c.log); resume(Effect.void) })
    void c.send("quit").then(() => { c.qmp.destroy(); NodeFs.rmSync(c.dir, { recursive: true }) })
  }))
  return c
})
const ready: Record<string, number[]> = { bare: [], floor: [], lib: [] }
const shut: Record<string, number[]> = { bare: [], floor: [], lib: [] }
const rounds = {
  bare: Effect.promise(async () => { const t0 = performance.now(); const q = await launchBare(); const r = performance.now(); await q.quit(); ready.bare!.push(r - t0); shut.bare!.push(performance.now() - r) }),
  floor: Effect.gen(function*() { const t0 = performance.now(); let r = 0; yield* Effect.scoped(Effect.tap(floorLaunch, () => { r = performance.now() })); ready.floor!.push(r - t0); shut.floor!.push(performance.now() - r) }),
  lib: Effect.gen(function*() { const t0 = performance.now(); let r = 0; yield* Effect.scoped(Effect.tap(Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false }), () => { r = performance.now() })); ready.lib!.push(r - t0); shut.lib!.push(performance.now() - r) })
}
const order = [["bare", "floor", "lib"], ["lib", "floor", "bare"], ["floor", "lib", "bare"], ["bare", "lib", "floor"]] as const
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < N + 3; i++) for (const k of order[i % 4]!) yield* rounds[k]
  const paired = (a: number[], b: number[]) => median(a.slice(3).map((x, i) => x - b[i + 3]!)).toFixed(2)
  console.log(JSON.stringify({ bare_ready: median(ready.bare!).toFixed(2), floor_ready: paired(ready.floor!, ready.bare!), lib_ready: paired(ready.lib!, ready.bare!), bare_shut: median(shut.bare!).toFixed(2), floor_shut: paired(shut.floor!, shut.bare!), lib_shut: paired(shut.lib!, shut.bare!) }))
}))
