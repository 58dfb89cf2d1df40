// What QEMU's log costs a shutdown after QEMU's exit (issue 17), plain Node, no library: -machine none over a
// socket pair, `quit`, then the log's end. A: no log (the bare client's stdio). B: read, close, unlink, rmdir after
// the exit. C: unlink + rmdir while QEMU exits, read + close after (the library's order). D: C with a detached
// spawn (the library's). E: B detached. Prints medians of: after exit → done, quit → exit, and their sum.
// node scratchpad/log-close-cost.mjs
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as cp from "node:child_process"
const run = (variant) => new Promise((resolve) => {
  const useLog = variant !== "A"
  const d = useLog ? fs.mkdtempSync(path.join(os.tmpdir(), "cc-")) : ""
  const p = path.join(d, "x.log")
  let fd = useLog ? fs.openSync(p, "wx+", 0o600) : -1
  const child = cp.spawn("qemu-system-x86_64", ["-machine", "none", "-nodefaults", "-display", "none", "-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control"], { stdio: ["ignore", useLog ? fd : "ignore", useLog ? fd : "inherit", "pipe"], detached: variant === "D" || variant === "E" })
  const s = child.stdio[3]
  let buf = ""; let state = 0; let tq = 0
  s.on("data", (c) => { buf += c; if (state === 0 && buf.includes("QMP")) { state = 1; s.write('{"execute":"qmp_capabilities"}'); } else if (state === 1 && buf.includes("return")) { state = 2;
    tq = performance.now()
    s.write('{"execute":"quit"}')
    if (variant === "C" || variant === "D") { fs.unlinkSync(p); fs.rmdirSync(d) }
  } })
  child.on("exit", () => {
    const t = performance.now()
    const b = Buffer.alloc(65536)
    if (variant === "C" || variant === "D") { fs.readSync(fd, b, 0, b.length, 0); fs.closeSync(fd) }
    if (variant === "B" || variant === "E") { fs.readSync(fd, b, 0, b.length, 0); fs.closeSync(fd); fs.unlinkSync(p); fs.rmdirSync(d) }
    const c = performance.now() - t
    s.destroy(); resolve([c, t - tq])
  })
})
const med = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1].toFixed(3)
const V = ["A", "B", "C", "D", "E"]
const r = {}, e = {}, tot = {}
for (const v of V) { r[v] = []; e[v] = []; tot[v] = [] }
for (let i = 0; i < 80; i++) for (const v of (i % 2 ? V : [...V].reverse())) { const [c, x] = await run(v); r[v].push(c); e[v].push(x); tot[v].push(c + x) }
const show = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, med(v)]))
console.log("after exit", show(r)); console.log("quit->exit", show(e)); console.log("total", show(tot))
