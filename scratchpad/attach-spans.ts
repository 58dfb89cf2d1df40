import { Effect, Tracer, Layer, Option } from "effect"
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as Machine from "../src/Machine.js"
const path = `/tmp/qm-attach-sp-${process.pid}.sock`
const child = ChildProcess.spawn("qemu-system-x86_64", ["-machine", "none", "-nodefaults", "-display", "none", "-qmp", `unix:${path},server=on,wait=off`], { stdio: "ignore" })
while (!NodeFs.existsSync(path)) await new Promise((r) => setTimeout(r, 5))
const durations = new Map<string, number[]>()
const inner = Effect.runSync(Effect.tracer)
const tracer = Tracer.make({
  span: (name, parent, ctx, links, start, kind, options) => {
    const span = inner.span(name, parent, ctx, links, start, kind, options)
    const end = span.end.bind(span)
    ;(span as any).end = (endTime: bigint, exit: any) => {
      const list = durations.get(name) ?? []
      list.push(Number(endTime - start) / 1e6)
      durations.set(name, list)
      end(endTime, exit)
    }
    return span
  },
  context: inner.context
})
for (let i = 0; i < 200; i++) {
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    yield* Machine.attach({ monitor: { path } })
  })).pipe(Effect.withSpan("whole"), Effect.withTracer(tracer)))
}
for (const [k, v] of durations) { v.sort((a, b) => a - b); console.log(k.padEnd(30), v[Math.floor(v.length / 2)]!.toFixed(3)) }
child.kill("SIGKILL"); NodeFs.rmSync(path, { force: true })
