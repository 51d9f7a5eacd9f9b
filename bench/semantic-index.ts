// Semantic-cache ANN index: build time, search latency and recall@1 against
// exact search, memory per entry, on synthetic clustered embeddings (seeded).
// Run: node bench/semantic-index.ts [--entries 100000] [--dims 1536] [--queries 1000]
//   [--clusters 2000] [--spread 0.6] [--paraphrase 0.35] [--k 1] [--m 16] [--ef-construction 100] [--ef-search 64] [--graph-dims N] [--kernel wasm-simd|js]
//
// Data: unit cluster centres; an entry is centre + gaussian noise (norm
// --spread 0.6, so entries of one cluster have cosine ~0.74, like prompts on
// one topic), normalised. "paraphrase" queries are stored entries plus noise
// of norm --paraphrase 0.35 (cosine ~0.94 to their source, as a reworded
// prompt would be; with --spread below ~0.5 a sibling is often nearer); "novel"
// queries are fresh members of a cluster (the cache misses). Recall@1: the
// index's best id is the exact best by full-precision cosine.
import { parseArgs } from "node:util";
import { createVectorIndex } from "../server/cache/ann.ts";
import { createVectorStore } from "../server/cache/ann-store.ts";

const { values } = parseArgs({
  options: {
    entries: { type: "string", default: "100000" },
    dims: { type: "string", default: "1536" },
    queries: { type: "string", default: "1000" },
    clusters: { type: "string", default: "2000" },
    k: { type: "string", default: "1" },
    m: { type: "string" },
    "ef-construction": { type: "string" },
    "ef-search": { type: "string" },
    "graph-dims": { type: "string" },
    kernel: { type: "string" },
    seed: { type: "string", default: "1" },
    spread: { type: "string", default: "0.6" },
    paraphrase: { type: "string", default: "0.35" },
  },
});
const entries = Number(values.entries);
const dims = Number(values.dims);
const queries = Number(values.queries);
const clusters = Math.min(Number(values.clusters), entries);
const k = Number(values.k);
const optional = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
const kernel = values.kernel === "js" ? "js" : "wasm-simd";
const spread = Number(values.spread);
const paraphrase = Number(values.paraphrase);

// ---- data ---------------------------------------------------------------------------------------
let state = Number(values.seed) >>> 0;
const random = (): number => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = Math.imul(state ^ (state >>> 15), state | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
};
let spare: number | undefined;
const gaussian = (): number => {
  if (spare !== undefined) {
    const s = spare;
    spare = undefined;
    return s;
  }
  const r = Math.sqrt(-2 * Math.log(1 - random()));
  const a = 2 * Math.PI * random();
  spare = r * Math.sin(a);
  return r * Math.cos(a);
};

// Entries, then paraphrase queries, then novel queries, in one store (its SIMD kernel makes the exact search affordable).
const records = entries + 2 * queries;
const store = createVectorStore({ length: dims, capacity: records, maxCapacity: records, kernel });
const centres = new Float32Array(clusters * dims);
const fill = (slot: number, base: Float32Array, baseOffset: number, noise: number): void => {
  const data = store.data;
  const at = store.offset(slot);
  const sigma = noise / Math.sqrt(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const v = base[baseOffset + i] + sigma * gaussian();
    data[at + i] = v;
    norm += v * v;
  }
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < dims; i++) data[at + i] *= scale;
};
const t0 = performance.now();
for (let c = 0; c < clusters; c++) {
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    const v = gaussian();
    centres[c * dims + i] = v;
    norm += v * v;
  }
  for (let i = 0; i < dims; i++) centres[c * dims + i] /= Math.sqrt(norm);
}
for (let j = 0; j < entries; j++) fill(j, centres, Math.floor(random() * clusters) * dims, spread);
const source = new Int32Array(queries);
for (let q = 0; q < queries; q++) {
  source[q] = Math.floor(random() * entries);
  fill(entries + q, store.data.slice(store.offset(source[q]), store.offset(source[q]) + dims), 0, paraphrase);
  fill(entries + queries + q, centres, Math.floor(random() * clusters) * dims, spread);
}
const vectorOf = (slot: number): Float32Array => store.data.slice(store.offset(slot), store.offset(slot) + dims);
process.stderr.write(`data: ${entries} entries, ${2 * queries} queries, ${dims} dims in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

// ---- exact answers (blocked so each entry is read once per 64 queries) --------------------------
const t1 = performance.now();
const exact = new Int32Array(2 * queries).fill(-1);
const exactSim = new Float64Array(2 * queries).fill(-Infinity);
for (let q0 = 0; q0 < 2 * queries; q0 += 64) {
  const q1 = Math.min(2 * queries, q0 + 64);
  for (let j = 0; j < entries; j++) {
    for (let q = q0; q < q1; q++) {
      const sim = store.dot(entries + q, j);
      if (sim > exactSim[q]) {
        exactSim[q] = sim;
        exact[q] = j;
      }
    }
  }
}
process.stderr.write(`exact search: ${((performance.now() - t1) / 1000).toFixed(1)} s\n`);

// ---- build --------------------------------------------------------------------------------------
const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
const before = process.memoryUsage();
const index = createVectorIndex({
  dimensions: dims,
  maxEntries: entries,
  m: optional(values.m),
  efConstruction: optional(values["ef-construction"]),
  efSearch: optional(values["ef-search"]),
  graphDimensions: optional(values["graph-dims"]),
  kernel,
});
const t2 = performance.now();
for (let j = 0; j < entries; j++) {
  index.add(`e${j}`, vectorOf(j));
  if ((j + 1) % 10_000 === 0) process.stderr.write(`built ${j + 1} in ${((performance.now() - t2) / 1000).toFixed(1)} s\n`);
}
const buildMs = performance.now() - t2;
gc?.();
const after = process.memoryUsage();

// ---- search -------------------------------------------------------------------------------------
const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const rows: string[][] = [];
for (const [kind, first] of [["paraphrase", entries], ["novel", entries + queries]] as const) {
  const vectors = Array.from({ length: queries }, (_, q) => vectorOf(first + q));
  for (let q = 0; q < Math.min(200, queries); q++) index.search(vectors[q], k); // warm the JIT
  const times: number[] = [];
  let hits = 0;
  for (let q = 0; q < queries; q++) {
    const start = performance.now();
    const found = index.search(vectors[q], k);
    times.push(performance.now() - start);
    if (found[0]?.id === `e${exact[first - entries + q]}`) hits++;
  }
  times.sort((a, b) => a - b);
  const meanSim = exactSim.slice(first - entries, first - entries + queries).reduce((a, b) => a + b, 0) / queries;
  rows.push([kind, meanSim.toFixed(3), ...[50, 90, 99].map((p) => percentile(times, p).toFixed(3)), times[times.length - 1].toFixed(3), (hits / queries).toFixed(3)]);
}

// Steady state of a full cache: each add evicts the oldest entry.
const t3 = performance.now();
const churn = Math.min(1000, entries);
for (let j = 0; j < churn; j++) index.add(`churn${j}`, vectorOf(j));
const churnUs = ((performance.now() - t3) * 1000) / churn;
const t4 = performance.now();
for (let j = churn; j < 2 * churn; j++) index.remove(`e${j}`);
const removeUs = ((performance.now() - t4) * 1000) / churn;

const mb = (n: number): string => (n / 1e6).toFixed(0);
console.log(`semantic index: ${entries} entries × ${dims} dims, ${clusters} clusters (spread ${spread}, paraphrase ${paraphrase}), k=${k}, kernel ${kernel}${gc ? "" : " (run with --expose-gc for steadier memory figures)"}`);
console.log(`build ${(buildMs / 1000).toFixed(1)} s (${((buildMs * 1000) / entries).toFixed(0)} µs/add); add at capacity (evicts oldest) ${churnUs.toFixed(0)} µs; remove ${removeUs.toFixed(0)} µs`);
console.log(
  `memory: index.bytes ${mb(index.bytes)} MB = ${(index.bytes / entries).toFixed(0)} B/entry; ` +
    `rss +${mb(after.rss - before.rss)} MB = ${((after.rss - before.rss) / entries).toFixed(0)} B/entry; ` +
    `heap+arrayBuffers +${mb(after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers)} MB (vectors alone: ${dims * 4} B/entry)`,
);
const header = ["queries", "exact top-1 cos", "p50 ms", "p90 ms", "p99 ms", "max ms", "recall@1"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
for (const row of [header, ...rows]) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  "));
