import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
import * as NodeFs from "node:fs"
NodeFs.writeFileSync("/tmp/x.img", Buffer.concat([Buffer.from("hello-world-1234"), Buffer.alloc(4080)]))
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"], addFds: [{ path: "/tmp/x.img", fdset: 1 }] })
  console.log(yield* vm.execute("blockdev-add", { driver: "raw", "node-name": "d1", "read-only": true, file: { driver: "file", filename: "/dev/fdset/1", locking: "off" } }))
  console.log(JSON.stringify(yield* vm.hmp(`qemu-io d1 "read -v 0 16"`)))
  console.log(JSON.stringify(yield* vm.log))
}))).catch(e => console.error("ERR", e))
