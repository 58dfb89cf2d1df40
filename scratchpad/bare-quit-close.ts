// Does closing the monitor right after quit's reply slow QEMU's exit? (issue 17: the library's quit → exit is
// 0.5–1 ms longer than the bare client's.) Alternates bare quit with and without closing the socket.
import { launchBare } from "../bench/bare.js"
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const main = async () => {
  const keep: number[] = [], close: number[] = [], busy: number[] = []
  for (let i = 0; i < 40; i++) {
    for (const mode of ["keep", "close", "busy"] as const) {
      const b = await launchBare()
      const t = performance.now()
      await new Promise<void>((res) => {
        b.child.once("exit", () => res())
        void b.execute("quit").then(() => {
          if (mode !== "keep") b.qmp.destroy()
          // The library's work in this window: about 1 ms of CPU in a few slices.
          if (mode === "busy") for (let k = 0; k < 4; k++) setImmediate(() => { const e = performance.now() + 0.25; while (performance.now() < e); })
        })
      })
      ;(mode === "keep" ? keep : mode === "close" ? close : busy).push(performance.now() - t)
    }
  }
  console.log({ keep_socket_ms: med(keep).toFixed(2), close_after_reply_ms: med(close).toFixed(2), close_and_1ms_cpu_ms: med(busy).toFixed(2) })
}
void main()
