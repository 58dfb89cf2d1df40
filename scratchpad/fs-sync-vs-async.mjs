// Cost of the temp dir's life (mkdtemp, open log, stat, close, unlink, rmdir): thread-pool trips vs sync calls.
import * as fs from "node:fs"
import * as os from "node:os"
const N = 200
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const p = (f, ...a) => new Promise((res, rej) => f(...a, (e, v) => e ? rej(e) : res(v)))
const asyncT = [], syncT = [], asyncMk = [], syncMk = []
for (let i = 0; i < N; i++) {
  let t = performance.now()
  const d = await p(fs.mkdtemp, os.tmpdir() + "/qm-x-")
  const fd = await p(fs.open, d + "/log", "wx", 0o600)
  asyncMk.push(performance.now() - t)
  t = performance.now()
  await p(fs.fstat, fd)
  await p(fs.close, fd)
  await p(fs.unlink, d + "/log")
  await p(fs.rmdir, d)
  asyncT.push(performance.now() - t)
  t = performance.now()
  const d2 = fs.mkdtempSync(os.tmpdir() + "/qm-x-")
  const fd2 = fs.openSync(d2 + "/log", "wx", 0o600)
  syncMk.push(performance.now() - t)
  t = performance.now()
  fs.fstatSync(fd2); fs.closeSync(fd2); fs.unlinkSync(d2 + "/log"); fs.rmdirSync(d2)
  syncT.push(performance.now() - t)
  await new Promise((r) => setTimeout(r, 2))
}
console.log({ async_make_ms: med(asyncMk), sync_make_ms: med(syncMk), async_remove_ms: med(asyncT), sync_remove_ms: med(syncT) })
