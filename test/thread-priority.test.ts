import { readdirSync, readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { lowerHelperThreadPriority } from "../server/transport/thread-priority.ts";

/** Each thread of this process: its name and nice value (field 19 of /proc/<pid>/task/<tid>/stat). */
function threads(): { tid: number; name: string; nice: number }[] {
  return readdirSync("/proc/self/task").map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { tid: Number(tid), name: readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim(), nice: Number(fields[16]) };
  });
}

describe.runIf(process.platform === "linux")("thread priorities", () => {
  it("lowers V8's helper threads to nice 19 and leaves the main thread alone", () => {
    const before = threads().find((t) => t.tid === process.pid)!;
    const lowered = lowerHelperThreadPriority();
    const after = threads();
    const helpers = after.filter((t) => t.name.startsWith("V8Worker"));
    expect(helpers.length).toBeGreaterThan(0);
    expect(lowered).toBeGreaterThanOrEqual(helpers.length);
    for (const t of helpers) expect(t.nice).toBe(19);
    expect(after.find((t) => t.tid === process.pid)!.nice).toBe(before.nice);
  });

  it("the request log's writer thread lowers itself to nice 10", async () => {
    const mainBefore = threads().find((t) => t.tid === process.pid)!.nice;
    // The worker module runs lowerOwnThreadPriority() first thing; a worker doing the same shows the effect per thread.
    const worker = new Worker(
      `const { lowerOwnThreadPriority } = await import(${JSON.stringify(new URL("../server/transport/thread-priority.ts", import.meta.url).href)});
       const { parentPort, threadId } = await import("node:worker_threads");
       lowerOwnThreadPriority();
       const { readFileSync } = await import("node:fs");
       const stat = readFileSync("/proc/thread-self/stat", "utf8");
       parentPort.postMessage(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));`,
      { eval: true },
    );
    const nice = await new Promise<number>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    await worker.terminate();
    expect(nice).toBe(Math.max(10, mainBefore)); // raising nice is allowed; a process already nicer stays so
    expect(threads().find((t) => t.tid === process.pid)!.nice).toBe(mainBefore);
  });
});
