// Which order of unlink / rmdir / close is cheapest after a child that shared the log fd exits (issue 17).
import * as fs from "node:fs"
import * as os from "node:os"
import { spawn } from "node:child_process"
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const r = { closeThenRemove: [], unlinkEarly_closeRmdirAfter: [], unlinkEarly_only_close_after: [] }
for (let i = 0; i < 60; i++) {
  for (const mode of Object.keys(r)) {
    const d = fs.mkdtempSync(os.tmpdir() + "/qm-ro-")
    const fd = fs.openSync(d + "/log", fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600)
    const child = spawn("sleep", ["0.02"], { stdio: ["ignore", fd, fd] })
    if (mode !== "closeThenRemove") { fs.unlinkSync(d + "/log") }
    if (mode === "unlinkEarly_only_close_after") fs.rmdirSync(d)
    await new Promise((res) => child.on("exit", res))
    const t = performance.now()
    fs.fstatSync(fd)
    fs.closeSync(fd)
    if (mode === "closeThenRemove") { fs.unlinkSync(d + "/log"); fs.rmdirSync(d) }
    if (mode === "unlinkEarly_closeRmdirAfter") fs.rmdirSync(d)
    r[mode].push(performance.now() - t)
  }
}
console.log(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, med(v).toFixed(3)])))
