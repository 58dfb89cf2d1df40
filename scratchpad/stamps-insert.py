# Puts temporary __qmT stamps into src for scratchpad/stamps.ts (issue 17); never commit the result: run, measure, then `git checkout src`.
def ins(path, anchor, stamp, after=True):
    s=open(path).read()
    if anchor not in s: print("missing", path, anchor); return
    line=f';(globalThis as any).__qmT?.("{stamp}")\n'
    s=s.replace(anchor, anchor+"\n"+line if after else line+anchor, 1)
    open(path,'w').write(s)
C='src/internal/lifecycle.ts'
ins(C,"    const signal = Option.getOrNull(Option.map(status, (s) => s.signal))","S.scopeClosed",after=False)
ins(C,"    finalLog = yield* started.readLog","S.log")
ins(C,"        yield* child.wait(Deadline.remaining(deadline)).pipe(Effect.mapError(timedOut))","S.exited")
ins(C,"    yield* Deferred.succeed(stopped, undefined)","S.end")
ins(C,"  const postShutdown = Effect.gen(function*() {","S.post")
ins(C,"    Effect.uninterruptible(Effect.suspend(() => {","S.shutdown")
Q='src/QemuProcess.ts'
ins(Q,"    for (const stream of handle.streams) stream?.destroy()","P.fin",after=False)
ins(Q,"        exited.settle(Exit.succeed({ exitCode, signal }))","P.exitEvent",after=False)
S='src/internal/qmpSession.ts'
ins(S,"        negotiated = result","R.sessionHandshake",after=False)
K='src/internal/connect.ts'
ins(K,"    consoleForRecord = Option.getOrUndefined(consoleSocket)","R.qmpStep",after=False)
ins(K,"    return {\n      name,\n      command,\n      child,","R.connectEnd",after=False)
L='src/internal/launch.ts'
M='src/Machine.ts'
ins(M,"    const { finalizer, lifecycle } = Lifecycle.make(started, machineScope, config.shutdownTimeout)","R.started",after=False)
ins(M,"    yield* started.ready","R.lifecycle",after=False)
ins(M,"    return machine","R.ready",after=False)
ins(M,"    const outer = yield* Effect.scope","M.enter",after=False)
ins(L,"      const temp = yield* PrivateDir.make","L.temp0",after=False)
ins(L,"    const spawnOptions: QemuProcess.SpawnOptions = {","L.prespawn",after=False)
ins(L,"    yield* Tracing.annotate(\"qemu.pid\", child.pid)","L.spawned")
T='src/internal/privateDir.ts'
ins(T,"const removeTree = (directory: string): void => {","T.rm0")
ins(T,"  NodeFs.rmdirSync(directory)","T.rm1")
F='src/internal/files.ts'
s=open(F).read()
s=s.replace("(fd) => Effect.ignore(Effect.try(() => NodeFs.closeSync(fd)))","(fd) => Effect.ignore(Effect.try(() => { (globalThis as any).__qmT?.(\"F.close0\"); NodeFs.closeSync(fd); (globalThis as any).__qmT?.(\"F.close1\") }))")
open(F,'w').write(s)
ins('src/QemuProcess.ts',"    for (const stream of handle.streams) stream?.destroy()","P.fin1")
ins(C,"              .pipe(Effect.ensuring(closeQmp), Effect.either)","S.quitDoneQmpClosed")

s=open(C).read()
s=s.replace("onSome: (c) => Effect.zipRight(c.close, started.releaseQmp)","onSome: (c) => Effect.zipRight(Effect.zipRight(c.close, Effect.sync(() => (globalThis as any).__qmT?.(\"S.qmpClose\"))), started.releaseQmp)")
open(C,'w').write(s)
s=open(S).read()
s=s.replace("ended !== undefined ? Effect.void : Effect.zipRight(transport.close, Deferred.await(disconnected))","ended !== undefined ? Effect.void : Effect.zipRight(Effect.zipRight(transport.close, Effect.sync(() => (globalThis as any).__qmT?.(\"S.transportClosed\"))), Deferred.await(disconnected))")
open(S,'w').write(s)
s=open(S).read()
s=s.replace("    const endSession = (error: QMPDisconnected) => {","    const endSession = (error: QMPDisconnected) => {\n;(globalThis as any).__qmT?.(\"S.endSession\")")
open(S,'w').write(s)
ins(L,"      const logDir = config.logDir ?? temp.directory","L.temp",after=False)
ins(L,"      attempt.log = logFile","L.log")
ins(L,"    const wrapper = [...(config.wrapper ?? [])]","L.setupDone",after=False)
ins(L,"    const attempt: Attempt = {","L.start",after=False)
ins(L,"    const fs = yield* FileSystem.FileSystem\n    const path = yield* Path.Path\n    const spawner","L.steps",after=False)
ins(L,"    attempt.child = child","L.spawned",after=False)
ins(M,"    const started = yield* Launch.start(config, machineScope)","M.forked",after=False)
ins(Q,"    const child = yield* Effect.async<ChildProcess.ChildProcess, SpawnError>((resume) => {","P.spawn0",after=False)
ins(Q,"      child.on(\"exit\", (exitCode, signal) => {","P.spawnReturned",after=False)
ins(Q,"    child.on(\"error\", () => {})","P.spawnEvent",after=False)
ins(S,"    // Handshake: the reader sent `qmp_capabilities` when the greeting came; one timer covers both.","Q.waiting",after=False)
ins(S,"    const decoder = new FrameDecoder(options.maxMessageBytes)","Q.make",after=False)
