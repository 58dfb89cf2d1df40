// Time of the synchronous child_process.spawn call (fork+exec in libuv) for the bare client's and the library's options (issue 17).
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import "../src/index.js"
const N = Number(process.argv[2] ?? 40)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const args = ["-display", "none", "-vga", "none", "-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control", "-machine", "none", "-nodefaults"]
const run = (opts: ChildProcess.SpawnOptions) => new Promise<number>((resolve) => {
  const c0 = process.cpuUsage(); const t0 = performance.now()
  const child = ChildProcess.spawn("qemu-system-x86_64", args, opts)
  const t = performance.now() - t0; const c = process.cpuUsage(c0)
  void c
  child.on("exit", () => resolve(t))
  setTimeout(() => child.kill("SIGKILL"), 30)
})
const main = async () => {
  const log = Fs.openSync("/tmp/spawn-cost.log", "w")
  const a: number[] = [], b: number[] = [], d: number[] = []
  for (let i = 0; i < N; i++) {
    a.push(await run({ stdio: ["ignore", "ignore", "inherit", "pipe"] }))
    b.push(await run({ stdio: ["ignore", log, log, "pipe"], detached: true, shell: false, env: process.env }))
    d.push(await run({ stdio: ["ignore", log, log, "pipe"], detached: true }))
  }
  console.log("bare", median(a).toFixed(2), "lib", median(b).toFixed(2), "lib-noenv", median(d).toFixed(2), "rss MB", (process.memoryUsage().rss / 1e6).toFixed(0))
  Fs.closeSync(log); Fs.rmSync("/tmp/spawn-cost.log")
}
void main()
