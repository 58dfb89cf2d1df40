// Does QEMU accept qmp_capabilities written before its greeting (issue 17)? Order of lines, and time to ready,
// alternating with the usual wait-for-greeting client. `node scratchpad/early-caps.mjs [rounds]`
import * as ChildProcess from "node:child_process"
const N = Number(process.argv[2] ?? 100)
const args = ["-display", "none", "-vga", "none", "-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control", "-machine", "none", "-nodefaults"]
const run = (early) => new Promise((resolve) => {
  const t0 = performance.now()
  const child = ChildProcess.spawn("qemu-system-x86_64", args, { stdio: ["ignore", "ignore", "inherit", "pipe"] })
  const qmp = child.stdio[3]
  const lines = []
  let buf = ""; let readyAt = 0; let greetAt = 0
  const caps = () => qmp.write(JSON.stringify({ execute: "qmp_capabilities", id: 1 }))
  if (early) caps()
  qmp.on("data", (c) => {
    buf += c.toString()
    let nl
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim(); buf = buf.slice(nl + 1)
      if (!line) continue
      const m = JSON.parse(line); lines.push(m)
      if ("QMP" in m) { greetAt = performance.now() - t0; if (!early) caps() }
      if (m.id === 1) { readyAt = performance.now() - t0; child.once("exit", () => resolve({ lines, readyAt, greetAt })); qmp.write(JSON.stringify({ execute: "quit", id: 2 })) }
    }
  })
})
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const r = { early: [], late: [] }; const g = { early: [], late: [] }
let bad = 0
for (let i = 0; i < N; i++) for (const k of i % 2 ? ["early", "late"] : ["late", "early"]) {
  const { lines, readyAt, greetAt } = await run(k === "early")
  if (!("QMP" in lines[0]) || JSON.stringify(lines[1]) !== '{"return":{},"id":1}') { bad++; console.log(k, JSON.stringify(lines)) }
  r[k].push(readyAt); g[k].push(readyAt - greetAt)
}
console.log(JSON.stringify({ rounds: N, bad, earlyMedian: med(r.early).toFixed(2), lateMedian: med(r.late).toFixed(2), diffOfMedians: (med(r.early) - med(r.late)).toFixed(2), greetToReadyEarly: med(g.early).toFixed(2), greetToReadyLate: med(g.late).toFixed(2) }))
