// Memory of a Node process started with --inspect=127.0.0.1:<port>, read
// through the inspector protocol after a full garbage collection: what the
// heap really holds, whatever the collector had not got round to yet. Used
// by bench/soak.ts to tell a leak from a heap that has merely grown.

/** process.memoryUsage() of the inspected process, in bytes, taken right after a full GC. */
export interface MemoryAfterGc {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** Collects garbage in the process behind the inspector on port, then reads process.memoryUsage(). */
export async function memoryAfterGc(port: number, timeoutMs = 20_000): Promise<MemoryAfterGc> {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(5000) })).json()) as { webSocketDebuggerUrl: string }[];
  const url = list[0]?.webSocketDebuggerUrl;
  if (url === undefined) throw new Error(`no inspector target on port ${port}`);
  const ws = new WebSocket(url);
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  let next = 1;
  ws.addEventListener("message", (ev) => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
    const p = msg.id === undefined ? undefined : pending.get(msg.id);
    if (p === undefined) return;
    pending.delete(msg.id!);
    if (msg.error) p.reject(new Error(msg.error.message));
    else p.resolve(msg.result);
  });
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("error", () => reject(new Error(`cannot open the inspector at ${url}`)), { once: true });
  });
  const call = (method: string, params: object = {}): Promise<any> =>
    new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const timer = setTimeout(() => ws.close(), timeoutMs);
  try {
    // Twice: objects freed by the first collection's finalizers go in the second.
    await call("HeapProfiler.collectGarbage");
    await call("HeapProfiler.collectGarbage");
    const r = await call("Runtime.evaluate", { expression: "JSON.stringify(process.memoryUsage())", returnByValue: true });
    return JSON.parse(r.result.value as string) as MemoryAfterGc;
  } finally {
    clearTimeout(timer);
    ws.close();
  }
}
