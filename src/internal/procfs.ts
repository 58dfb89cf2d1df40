/**
 * What Linux's `/proc` says about processes and sockets, read synchronously
 * (each read is a few microseconds of procfs, never a disk): a process's
 * descendants, the sockets it holds, and which socket is the other end of a
 * TCP connection. Used to kill a whole QEMU process tree (a wrapper may fork)
 * and to prove that a connection to a monitor's listener comes from the QEMU
 * the launch started.
 */
import * as NodeFs from "node:fs"

const readOrUndefined = (path: string): string | undefined => {
  try {
    return NodeFs.readFileSync(path, "utf8")
  } catch {
    return undefined // the process or socket is gone: the normal race with /proc
  }
}

/** Parent pid, process group, state letter and start time of a process, or undefined once it is gone. */
const statOf = (pid: number): {
  readonly ppid: number
  readonly pgrp: number
  readonly state: string
  readonly startTime: string | undefined
} | undefined => {
  const stat = readOrUndefined(`/proc/${pid}/stat`)
  if (stat === undefined) return undefined
  // After the command name (which may hold spaces and parentheses): state is field 3 of stat(5), start time 22.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return { ppid: Number(fields[1]), pgrp: Number(fields[2]), state: fields[0] ?? "?", startTime: fields[19] }
}

/** Not a zombie (`Z`) nor dead (`X`): a state letter of a process that still runs. */
const isLiveState = (state: string) => state !== "Z" && state !== "X"

const livePids = (): Array<number> =>
  NodeFs.readdirSync("/proc").map(Number).filter((pid) => Number.isInteger(pid))

/** When a process started (clock ticks since boot): with its pid, an identity that survives pid reuse. */
export const startTime = (pid: number): string | undefined => statOf(pid)?.startTime

/**
 * A process that is not our child, as its pid and its start time: once it
 * has exited, its pid can be given to another process, which must never be
 * taken for it (waited on, or sent a signal).
 */
export interface ProcessIdentity {
  readonly pid: number
  /** Clock ticks since boot; undefined if the process was already gone (or hidden) when identified. */
  readonly startTime: string | undefined
}

/** Who holds `pid` now. */
export const identify = (pid: number): ProcessIdentity => ({ pid, startTime: startTime(pid) })

/** Is the identified process itself (not a later holder of its pid) alive, and not a zombie? One read of /proc. */
export const isSameAlive = (identity: ProcessIdentity): boolean => {
  const stat = identity.startTime === undefined ? undefined : statOf(identity.pid)
  return stat !== undefined && isLiveState(stat.state) && stat.startTime === identity.startTime
}

/**
 * Sends `signal` to the identified process if it is still that process;
 * false if it is gone, its pid now someone else's, or the signal not ours
 * to send. Between the check and the signal lie microseconds: a pid reused
 * within them would take the signal (closing that needs pidfds, which Node
 * does not offer).
 */
export const signalIfSame = (identity: ProcessIdentity, signal: NodeJS.Signals): boolean => {
  if (!isSameAlive(identity)) return false
  try {
    process.kill(identity.pid, signal)
    return true
  } catch {
    return false
  }
}

/** The other live processes of `pid`'s tree, found in one look at /proc: its group's members and its descendants. */
export const treeOf = (pid: number): Array<number> => {
  const children = new Map<number, Array<number>>()
  const members: Array<number> = []
  for (const other of livePids()) {
    const stat = statOf(other)
    if (stat === undefined || !isLiveState(stat.state)) continue
    if (stat.pgrp === pid && other !== pid) members.push(other)
    const siblings = children.get(stat.ppid)
    if (siblings === undefined) children.set(stat.ppid, [other])
    else siblings.push(other)
  }
  const found = new Set(members)
  const queue = [pid]
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.add(child)
      queue.push(child)
    }
  }
  return [...found]
}

/** The process holding the socket with this inode (a look at every process's descriptors we may read). */
export const socketOwner = (inode: string): number | undefined =>
  livePids().find((pid) => pid !== process.pid && socketInodes(pid).has(inode))

/** A process's command line, or undefined once it is gone (or not ours to read). */
export const commandLine = (pid: number): Array<string> | undefined => {
  const text = readOrUndefined(`/proc/${pid}/cmdline`)
  return text === undefined || text === "" ? undefined : text.replace(/\0$/, "").split("\0")
}

/** The inodes of the sockets a process holds open (`socket:[N]` links in `/proc/PID/fd`). */
export const socketInodes = (pid: number): Set<string> => {
  const inodes = new Set<string>()
  let fds: Array<string>
  try {
    fds = NodeFs.readdirSync(`/proc/${pid}/fd`)
  } catch {
    return inodes
  }
  for (const fd of fds) {
    try {
      const link = NodeFs.readlinkSync(`/proc/${pid}/fd/${fd}`)
      if (link.startsWith("socket:[")) inodes.add(link.slice(8, -1))
    } catch {
      // closed meanwhile
    }
  }
  return inodes
}

/** An IPv4 or IPv6 address as `/proc/net/tcp{,6}` spells it: 32-bit words in host (little-endian) order. */
const procAddress = (address: string, port: number): { readonly table: "tcp" | "tcp6"; readonly text: string } => {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0")
  const word = (bytes: ReadonlyArray<number>) =>
    bytes.slice().reverse().map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join("")
  const v4 = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/i.exec(address)
  if (v4 !== null && !address.includes(":")) {
    return { table: "tcp", text: `${word(v4.slice(1).map(Number))}:${hexPort}` }
  }
  const bytes = ipv6Bytes(address)
  const words = [0, 4, 8, 12].map((i) => word(bytes.slice(i, i + 4))).join("")
  return { table: "tcp6", text: `${words}:${hexPort}` }
}

const ipv6Bytes = (address: string): Array<number> => {
  let text = address
  const v4Tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  const tail: Array<number> = []
  if (v4Tail !== null) {
    tail.push(...v4Tail.slice(1).map(Number))
    text = text.slice(0, v4Tail.index) + "0:0"
  }
  const [head = "", rest] = text.split("::")
  const left = head === "" ? [] : head.split(":")
  const right = rest === undefined || rest === "" ? [] : rest.split(":")
  const groups = rest === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right]
  const bytes = groups.flatMap((group) => {
    const n = parseInt(group, 16)
    return [n >> 8, n & 0xff]
  })
  if (tail.length === 4) bytes.splice(12, 4, ...tail)
  return bytes
}

/**
 * The inode of the socket at the other end of a TCP connection on this host:
 * the entry of `/proc/net/tcp{,6}` whose local address is our remote one and
 * whose remote address is our local one.
 */
export const tcpPeerInode = (
  local: { readonly address: string; readonly port: number },
  remote: { readonly address: string; readonly port: number }
): string | undefined => {
  const peerLocal = procAddress(remote.address, remote.port)
  const peerRemote = procAddress(local.address, local.port)
  const table = readOrUndefined(`/proc/net/${peerLocal.table}`)
  if (table === undefined) return undefined
  for (const line of table.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/)
    if (fields[1] === peerLocal.text && fields[2] === peerRemote.text) return fields[9]
  }
  return undefined
}
