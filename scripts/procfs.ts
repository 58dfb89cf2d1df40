/** What /proc says about this process's children, for the benchmarks and the soak. */
import * as NodeFs from "node:fs"

/** Live (non-zombie) QEMU processes whose parent is this process. */
export const qemuChildren = (): number =>
  NodeFs.readdirSync("/proc").filter((entry) => {
    if (!/^\d+$/.test(entry)) return false
    try {
      const stat = NodeFs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      return Number(fields[1]) === process.pid && fields[0] !== "Z" && comm.startsWith("qemu")
    } catch {
      return false // raced with the process exiting
    }
  }).length

/** Live QEMU processes below `pid` in the process tree (1: the whole machine). */
export const qemuDescendants = (pid: number): Array<number> => {
  const table = NodeFs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).flatMap((entry) => {
    try {
      const stat = NodeFs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      return fields[0] === "Z" ? [] : [{ pid: Number(entry), ppid: Number(fields[1]), qemu: comm.startsWith("qemu") }]
    } catch {
      return [] // raced with the process exiting
    }
  })
  const found: Array<number> = []
  let frontier = [pid]
  while (frontier.length > 0) {
    const next = table.filter((p) => frontier.includes(p.ppid))
    found.push(...next.filter((p) => p.qemu).map((p) => p.pid))
    frontier = next.map((p) => p.pid)
  }
  return found
}
