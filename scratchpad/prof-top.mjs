import * as fs from "node:fs"
const file = process.argv[2]
const p = JSON.parse(fs.readFileSync(file, "utf8"))
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const self = new Map()
const dt = p.timeDeltas
const counts = new Map()
p.samples.forEach((id, i) => counts.set(id, (counts.get(id) ?? 0) + (dt[i] ?? 0)))
let total = 0
for (const [id, t] of counts) {
  const n = byId.get(id)
  const key = `${n.callFrame.functionName || "(anon)"} ${n.callFrame.url.replace(/.*\/(node_modules|dist)\//, "$1/")}:${n.callFrame.lineNumber + 1}`
  self.set(key, (self.get(key) ?? 0) + t)
  total += t
}
// inclusive by url bucket
const byUrl = new Map()
for (const [id, t] of counts) {
  const n = byId.get(id)
  const u = n.callFrame.url.replace(/.*\/(node_modules\/[^/]+|dist)\/.*/, "$1") || n.callFrame.functionName
  byUrl.set(u, (byUrl.get(u) ?? 0) + t)
}
console.log("total ms", (total / 1000).toFixed(0))
for (const [k, v] of [...byUrl].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log((v / 1000).toFixed(1).padStart(8), k)
console.log("--- self")
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((v / 1000).toFixed(1).padStart(8), k)
