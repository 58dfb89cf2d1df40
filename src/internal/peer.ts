/**
 * Who is at the other end of an accepted connection. A monitor's listener
 * (TCP, or a unix path) can be reached by any local process, and whoever
 * connects first would get the QMP session; the launch accepts only a
 * connection it can trace to the QEMU it started:
 *
 * - TCP: the peer socket's inode, found in `/proc/net/tcp{,6}` by the two
 *   addresses, must be among the descriptors of the QEMU process tree;
 * - unix: the connecting process (SO_PEERCRED, through the native helper)
 *   must be in that tree. Without the helper, the socket was bound owner-only
 *   (0600), so only this user's processes can connect at all.
 */
import type * as Net from "node:net"
import * as Native from "./native.js"
import * as Procfs from "./procfs.js"

/** Why a connection was accepted or refused, for the debug log. */
export interface PeerCheck {
  readonly accepted: boolean
  readonly detail: string
}

/** Checks that `socket`'s peer is `pid` or one of its descendants (a wrapper may fork QEMU). */
export const fromProcessTree = (socket: Net.Socket, pid: number): PeerCheck => {
  const tree = [pid, ...Procfs.treeOf(pid)]
  if (socket.remoteAddress !== undefined && socket.remotePort !== undefined) {
    const inode = Procfs.tcpPeerInode(
      { address: socket.localAddress ?? "", port: socket.localPort ?? 0 },
      { address: socket.remoteAddress, port: socket.remotePort }
    )
    if (inode === undefined) return { accepted: false, detail: "the peer's socket is not on this host" }
    const owner = tree.find((p) => Procfs.socketInodes(p).has(inode))
    return owner === undefined
      ? { accepted: false, detail: `the peer socket (inode ${inode}) belongs to no process of QEMU's tree` }
      : { accepted: true, detail: `the peer socket belongs to pid ${owner}` }
  }
  const fd = Native.unixSocketFd(socket)
  const helper = Native.load()
  if (fd === undefined || helper._tag === "Left") {
    return { accepted: true, detail: "unix socket bound owner-only; no SO_PEERCRED without the native helper" }
  }
  const credentials = helper.right.peerCredentials(fd)
  if (typeof credentials === "number") {
    return { accepted: false, detail: `SO_PEERCRED failed: ${Native.errnoName(-credentials)}` }
  }
  const [peer] = credentials
  return tree.includes(peer)
    ? { accepted: true, detail: `the peer is pid ${peer}` }
    : { accepted: false, detail: `the peer is pid ${peer}, not a process of QEMU's tree` }
}

/**
 * The pid of the process at the other end of a connection we made, when this
 * host can tell: SO_PEERCRED for a unix socket (native helper), the owner of
 * the peer socket's inode for TCP. Undefined for a peer on another host.
 */
export const peerPid = (socket: Net.Socket): number | undefined => {
  if (socket.remoteAddress !== undefined && socket.remotePort !== undefined) {
    const inode = Procfs.tcpPeerInode(
      { address: socket.localAddress ?? "", port: socket.localPort ?? 0 },
      { address: socket.remoteAddress, port: socket.remotePort }
    )
    return inode === undefined ? undefined : Procfs.socketOwner(inode)
  }
  const fd = Native.unixSocketFd(socket)
  const helper = Native.load()
  if (fd === undefined || helper._tag === "Left") return undefined
  const credentials = helper.right.peerCredentials(fd)
  return typeof credentials === "number" ? undefined : credentials[0]
}
