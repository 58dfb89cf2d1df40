// Does QEMU itself hang on device_add of an unknown driver while a guest runs? (bare client, no library)
import * as NodeFs from "node:fs"
import { launchBare } from "../bench/bare.js"
import * as EchoGuest from "../src/testing/EchoGuest.js"
const img = `/tmp/qm-devadd-${process.pid}.img`
NodeFs.writeFileSync(img, EchoGuest.image())
const withTimeout = <A>(p: Promise<A>, ms: number) => Promise.race([p, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms))])
for (let i = 0; i < Number(process.argv[2] ?? 10); i++) {
  const bare = await launchBare(["-machine", "pc,graphics=off", "-nic", "none", "-m", "16", "-drive", `file=${img},format=raw,if=ide`], true)
  await new Promise((r) => setTimeout(r, 300)) // let the guest boot
  const t0 = performance.now()
  const r = await withTimeout(bare.execute("device_add", { driver: "no-such-device" }), 15000)
  const ms = performance.now() - t0
  const q = await withTimeout(bare.execute("query-status"), 5000)
  console.log(`run ${i}: device_add ${r === "timeout" ? "NO REPLY in 15 s" : `${ms.toFixed(0)} ms`}; query-status after: ${q === "timeout" ? "no reply" : "ok"}`)
  bare.child.kill("SIGKILL")
}
NodeFs.rmSync(img)
