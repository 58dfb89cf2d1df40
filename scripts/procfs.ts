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
