// Inclusive time per function of our dist (not effect's), from a .cpuprofile
import * as fs from "node:fs"
const p = JSON.parse(fs.readFileSync(process.argv[2], "utf8"))
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const time = new Map()
p.samples.forEach((id, i) => time.set(id, (time.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)))
const incl = new Map()
for (const [id, t] of time) {
  const seen = new Set()
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur)
    const url = n.callFrame.url
    if (!/\/dist\/(?!esm)/.test(url) || /node_modules/.test(url)) continue
    const key = `${n.callFrame.functionName || "(anon)"} ${url.replace(/.*\/dist\//, "")}:${n.callFrame.lineNumber + 1}`
    if (seen.has(key)) continue
    seen.add(key)
    incl.set(key, (incl.get(key) ?? 0) + t)
  }
}
for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log((v / 1000).toFixed(1).padStart(8), k)
