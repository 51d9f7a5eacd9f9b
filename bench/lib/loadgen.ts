// The bench/.bin/loadgen command line and the JSON it prints: shared by
// bench/run.ts and bench/chaos.ts.

import path from "node:path";
import { BIN_DIR, pinnedArgv } from "./rig.ts";

/** What bench/.bin/loadgen prints on stdout (latencies in ms). */
export interface LoadgenResult {
  mode: string;
  url: string;
  rate: number;
  sent: number;
  ok: number;
  errors: number;
  errorSamples: string[];
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  ttft_p50?: number;
  ttft_p90?: number;
  ttft_p99?: number;
  ttft_max?: number;
  sendLag_p99: number;
  sendLag_max: number;
  achievedRate: number;
  cpu_ms: number;
  wall_ms: number;
}

/** One open-loop load run: target base URL, scenario, rate/s, recorded and warm-up seconds, per-request timeout, extra headers. */
export interface LoadgenParams {
  url: string;
  mode: string;
  rate: number;
  durationS: number;
  warmupS: number | string;
  timeout: string;
  headers?: string[];
  /** Every request's prompt distinct (cache misses). */
  unique?: boolean;
  /** Modes grpc and connect: the file holding the request body. */
  body?: string;
}

/** The argv that runs bench/.bin/loadgen for p (on CPU 0 when pin). */
export function loadgenArgv(pin: boolean, p: LoadgenParams): string[] {
  const args = [
    path.join(BIN_DIR, "loadgen"),
    "-url", p.url,
    "-mode", p.mode,
    "-rate", String(p.rate),
    "-duration", `${p.durationS}s`,
    "-warmup", `${p.warmupS}s`,
    "-timeout", p.timeout,
  ];
  for (const h of p.headers ?? []) args.push("-header", h);
  if (p.unique === true) args.push("-unique");
  if (p.body !== undefined) args.push("-body", p.body);
  return pinnedArgv(pin, 0, args);
}
