// How long trivial work takes right after a child's exit event, against the same work warm (issue 17).
import * as fs from "node:fs"
import { spawn } from "node:child_process"
const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const cold = [], warm = [], sys1 = [], sys2 = []
const work = () => { let x = 0; for (let i = 0; i < 20000; i++) x += i % 7; return x }
for (let i = 0; i < 60; i++) {
  const child = spawn("sleep", ["0.02"], { stdio: "ignore" })
  await new Promise((res) => child.on("exit", res))
  let t = performance.now(); work(); cold.push(performance.now() - t)
  t = performance.now(); fs.fstatSync(0); sys1.push(performance.now() - t)
  t = performance.now(); work(); warm.push(performance.now() - t)
  t = performance.now(); fs.fstatSync(0); sys2.push(performance.now() - t)
}
console.log({ work_first_ms: med(cold).toFixed(3), work_again_ms: med(warm).toFixed(3), fstat_first: med(sys1).toFixed(4), fstat_again: med(sys2).toFixed(4) })
