import { readdirSync, readFileSync } from "node:fs";
import { setPriority } from "node:os";

/** The lowest scheduling priority (nice 19): these threads run when the event loop does not want the CPU. */
const BACKGROUND = 19;

/**
 * Lowers V8's helper threads (concurrent GC marking and sweeping, background
 * compilation) to the lowest priority, leaving the main thread's alone.
 *
 * Why: where the gateway has fewer cores than threads (a container limited to
 * one CPU, a pinned process), the kernel gives a runnable helper thread an
 * equal share, so the event loop waits for time slices of several
 * milliseconds while it has requests queued. Measured on one core at 1,000
 * requests/s: p99 of a bare Node proxy fell from 10–15 ms to about 4 ms. With
 * spare cores the helpers still run at once on another core, so nothing is lost.
 *
 * Linux only (elsewhere, and where /proc cannot be read, it does nothing).
 * Nice values apply per thread on Linux, and raising one needs no privilege.
 * Returns how many threads it lowered.
 */
export function lowerHelperThreadPriority(): number {
  if (process.platform !== "linux") return 0;
  let lowered = 0;
  let tids: string[];
  try {
    tids = readdirSync("/proc/self/task");
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      const name = readFileSync(`/proc/self/task/${tid}/comm`, "utf8");
      // V8's platform workers and its delayed-task scheduler; libuv's pool and our workers are not started yet.
      if (!name.startsWith("V8Worker") && !name.startsWith("DelayedTaskSch")) continue;
      setPriority(Number(tid), BACKGROUND);
      lowered++;
    } catch {
      // The thread ended, or a sandbox refuses: scheduling stays as it was.
    }
  }
  return lowered;
}

/**
 * For a worker thread's own start: lowers the calling thread only (Linux
 * applies nice per thread). nice 10 gives it about a tenth of a contended
 * core: enough to keep up at the load one event loop can carry, and little
 * enough that the event loop is not kept waiting behind it.
 */
export function lowerOwnThreadPriority(nice = 10): void {
  if (process.platform !== "linux") return;
  try {
    setPriority(nice);
  } catch {
    // Refused: it keeps its priority.
  }
}
