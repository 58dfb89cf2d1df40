#!/usr/bin/env node
// The native helper (native/unix_socket.c: SCM_RIGHTS sends and SO_PEERCRED) at install time.
//   node scripts/install-native.mjs             npm's install step: use the prebuilt binary for this
//                                               platform if it loads, else compile with node-gyp
//   node scripts/install-native.mjs --prebuild  before packing: copy the local build into prebuilds/
// A failed compile does not fail the install (the library works without the helper, but for fd
// passing); it says so, and how to retry. Written in plain JS: it runs before anything is built.
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"

const root = Path.dirname(Path.dirname(new URL(import.meta.url).pathname))
const built = Path.join(root, "build", "Release", "qemu_machine_native.node")
const prebuilt = Path.join(root, "prebuilds", `${process.platform}-${process.arch}`, "qemu_machine_native.node")

const loads = (file) => {
  try {
    createRequire(import.meta.url)(file)
    return true
  } catch {
    return false
  }
}

if (process.argv.includes("--prebuild")) {
  if (!loads(built)) {
    console.error(`install-native: no working ${built} to ship; run npm run build:native first`)
    process.exit(1)
  }
  Fs.mkdirSync(Path.dirname(prebuilt), { recursive: true })
  Fs.copyFileSync(built, prebuilt)
  process.exit(0)
}

if (loads(built) || loads(prebuilt)) process.exit(0)

// npm hands install scripts its own node-gyp; fall back to one on PATH.
const gyp = process.env.npm_config_node_gyp
const result = gyp !== undefined
  ? spawnSync(process.execPath, [gyp, "rebuild"], { cwd: root, stdio: "inherit" })
  : spawnSync("node-gyp", ["rebuild"], { cwd: root, stdio: "inherit" })
if (result.status !== 0 || !loads(built)) {
  console.warn(
    [
      "qemu-machine: the native helper did not build (it needs g++, make and python3), and there is no",
      `prebuilt one for ${process.platform}-${process.arch}. Everything works without it but passing file`,
      "descriptors to QEMU (getfd, addFd, sendFdScm: FdPassingError Unavailable). After installing the",
      "tools: npm rebuild qemu-machine. `npx qemu-machine doctor` shows what is there."
    ].join("\n")
  )
}
