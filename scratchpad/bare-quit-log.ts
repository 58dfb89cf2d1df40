// Does QEMU exit slower with its output on a file (as the library launches it)? Bare spawn, alternating
// stdio ignore/inherit against a log file fd (issue 17).
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import type * as Net from "node:net"
import { bareArgs } from "../bench/bare.js"
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const run = (logFd: number | undefined) => new Promise<number>((resolve) => {
  const child = ChildProcess.spawn("qemu-system-x86_64", bareArgs(["-machine", "none", "-nodefaults"]), {
    stdio: logFd === undefined ? ["ignore", "ignore", "inherit", "pipe"] : ["ignore", logFd, logFd, "pipe"], detached: logFd !== undefined
  })
  const qmp = child.stdio[3] as Net.Socket
  let buf = ""; let stage = 0; let t = 0
  qmp.on("data", (c) => {
    buf += c.toString()
    let nl
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl); buf = buf.slice(nl + 1)
      if (stage === 0) { stage = 1; qmp.write(JSON.stringify({ execute: "qmp_capabilities", id: 1 })) }
      else if (stage === 1) { stage = 2; t = performance.now(); qmp.write(JSON.stringify({ execute: "quit", id: 2 })) }
      void line
    }
  })
  child.once("exit", () => resolve(performance.now() - t))
})
const main = async () => {
  const plain: number[] = [], logged: number[] = []
  for (let i = 0; i < 40; i++) {
    plain.push(await run(undefined))
    const d = fs.mkdtempSync(os.tmpdir() + "/qm-bq-")
    const fd = fs.openSync(d + "/log", "wx")
    logged.push(await run(fd))
    fs.closeSync(fd); fs.rmSync(d, { recursive: true })
  }
  console.log({ quit_to_exit_plain_ms: med(plain).toFixed(2), quit_to_exit_logfile_detached_ms: med(logged).toFixed(2) })
}
void main()
