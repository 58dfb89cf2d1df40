import * as net from "node:net"
import * as cp from "node:child_process"
import * as Procfs from "../src/internal/procfs.js"
const port = 45000 + Math.floor(Math.random() * 1000)
const child = cp.spawn("qemu-system-x86_64", ["-machine", "none", "-nodefaults", "-display", "none", "-qmp", `tcp:127.0.0.1:${port},server=on,wait=off`])
setTimeout(() => {
  const s = net.connect({ host: "127.0.0.1", port }, () => {
    console.log(s.localAddress, s.localPort, s.remoteAddress, s.remotePort)
    const inode = Procfs.tcpPeerInode({ address: s.localAddress!, port: s.localPort! }, { address: s.remoteAddress!, port: s.remotePort! })
    console.log("inode", inode, "owner", inode && Procfs.socketOwner(inode), "child", child.pid)
    child.kill(); s.destroy()
  })
}, 300)
