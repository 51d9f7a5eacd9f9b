import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// The chaos soak (bench/soak.ts) at CI size: two minutes of steady traffic
// through two gateway processes while the primary provider fails 30 % of
// calls and storms, Redis is paused and restarted, one gateway is killed
// with SIGKILL and started again, and rude callers misbehave. Two minutes
// is one full cycle of events, and long enough for the slowloris
// connections opened at the start to pass node:http's headersTimeout (66 s,
// checked every 30 s), so the check that the gateway closes them has teeth.
// The steady rate is kept at 30/s (3,600 requests): the CI machine runs the
// other test files at the same time, and 99.9 % then still means at most 3
// unexplained failures. Needs Go (the stand-in is built) and redis-server.

const MINUTES = 2;
const RATE = 30;
const dir = mkdtempSync(path.join(tmpdir(), "sy-soak-test-"));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Report {
  pass: boolean;
  checks: { name: string; value: string; target: string; pass: boolean }[];
  figures: { steady: { sent: number; ok: number }; kills: number };
}

describe("chaos soak", () => {
  it(`keeps callers whole, charges what was served and leaks nothing over ${MINUTES} minutes`, async () => {
    const json = path.join(dir, "report.json");
    const root = path.resolve(import.meta.dirname, "..");
    const child = spawn(process.execPath, ["bench/soak.ts", "--minutes", String(MINUTES), "--rate", String(RATE), "--json", json], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    let report: Report | undefined;
    try {
      report = JSON.parse(readFileSync(json, "utf8")) as Report;
    } catch {
      // The soak stopped before its report: the output says why.
    }
    // The report goes to the CI log whatever happens: its figures are the point of a soak.
    console.log(output.slice(output.indexOf("SOAK REPORT")));
    const failed = report?.checks.filter((c) => !c.pass).map((c) => `${c.name}: ${c.value} (target ${c.target})`) ?? [];
    expect({ code, failed }, output).toEqual({ code: 0, failed: [] });
    expect(report!.pass).toBe(true);
    expect(report!.figures.kills).toBe(1);
    expect(report!.figures.steady.sent).toBe(MINUTES * 60 * RATE);
  }, (MINUTES * 60 + 180) * 1000);
});
