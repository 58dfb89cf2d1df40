// rmSync(recursive) against unlink + rmdir for a temp dir holding one file (issue 17).
import * as fs from "node:fs"
import * as os from "node:os"
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const a = [], b = [], c = []
for (let i = 0; i < 200; i++) {
  for (const [arr, rm] of [[a, (d) => fs.rmSync(d, { recursive: true, force: true })], [b, (d) => { for (const f of fs.readdirSync(d)) fs.unlinkSync(d + "/" + f); fs.rmdirSync(d) }], [c, (d) => { fs.unlinkSync(d + "/log"); fs.rmdirSync(d) }]]) {
    const d = fs.mkdtempSync(os.tmpdir() + "/qm-rm-")
    fs.closeSync(fs.openSync(d + "/log", "wx"))
    await new Promise((r) => setTimeout(r, 3))
    const t = performance.now(); rm(d); arr.push(performance.now() - t)
  }
}
console.log({ rmSync_ms: med(a), readdir_unlink_rmdir_ms: med(b), unlink_rmdir_ms: med(c) })
