import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as Machine from "../src/Machine.js"
const path = `/tmp/qm-attach-prof-${process.pid}.sock`
const child = ChildProcess.spawn("qemu-system-x86_64", ["-machine", "none", "-nodefaults", "-display", "none", "-qmp", `unix:${path},server=on,wait=off`], { stdio: "ignore" })
while (!NodeFs.existsSync(path)) await new Promise((r) => setTimeout(r, 5))
const times: number[] = []
for (let i = 0; i < 300; i++) {
  const t0 = performance.now()
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const vm = yield* Machine.attach({ monitor: { path } })
    times.push(performance.now() - t0)
  })))
  times[times.length - 1] = [times[times.length - 1]!, performance.now() - t0] as any
}
const a = times.map((t: any) => t[0]).sort((x, y) => x - y), b = times.map((t: any) => t[1]).sort((x, y) => x - y)
console.log("attach median", a[150]!.toFixed(2), "attach+detach median", b[150]!.toFixed(2))
child.kill("SIGKILL"); NodeFs.rmSync(path, { force: true })
