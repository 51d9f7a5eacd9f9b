import { describe, expect, it } from "vitest";
import { createVectorStore } from "../server/cache/ann-store.ts";
import { createVectorIndex, type VectorIndex } from "../server/cache/ann.ts";

/** Seeded data: the same vectors on every run. */
function generator(seed: number) {
  let state = seed >>> 0;
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const gaussian = (): number => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const unit = (v: Float32Array): Float32Array => {
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  /** Vector plus gaussian noise of the given total norm, normalised. */
  const near = (base: Float32Array, noise: number): Float32Array => unit(base.map((x) => x + (noise / Math.sqrt(base.length)) * gaussian()));
  /** `count` vectors around `clusters` random unit centres, within-cluster cosine ~0.74. */
  const clustered = (count: number, dims: number, clusters: number): Float32Array[] => {
    const centres = Array.from({ length: clusters }, () => unit(Float32Array.from({ length: dims }, gaussian)));
    return Array.from({ length: count }, () => near(centres[Math.floor(random() * clusters)], 0.6));
  };
  return { random, gaussian, near, clustered, unit };
}

const norms = new WeakMap<ArrayLike<number>, number>();
function norm(v: ArrayLike<number>): number {
  let n = norms.get(v);
  if (n === undefined) {
    n = 0;
    for (let i = 0; i < v.length; i++) n += v[i] * v[i];
    n = Math.sqrt(n);
    norms.set(v, n);
  }
  return n;
}

/** Cosine in double precision (norms cached: the brute-force reference dominates these tests' time otherwise). */
function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot / (norm(a) * norm(b));
}

/** The exact top k by cosine, best first. */
function bruteForce(vectors: Map<string, Float32Array>, query: Float32Array, k: number): { id: string; similarity: number }[] {
  const ids = [...vectors.keys()];
  const sims = Float64Array.from(vectors.values(), (v) => cosine(v, query));
  const out: { id: string; similarity: number }[] = [];
  for (let n = 0; n < Math.min(k, ids.length); n++) {
    let best = -1;
    for (let i = 0; i < sims.length; i++) if (best < 0 || sims[i] > sims[best]) best = i;
    out.push({ id: ids[best], similarity: sims[best] });
    sims[best] = -Infinity;
  }
  return out;
}

/** Share of queries whose best match is the exact best. */
function recallAt1(index: VectorIndex, vectors: Map<string, Float32Array>, queries: Float32Array[]): number {
  let hits = 0;
  for (const q of queries) if (index.search(q, 1)[0]?.id === bruteForce(vectors, q, 1)[0].id) hits++;
  return hits / queries.length;
}

function fill(index: VectorIndex, vectors: Float32Array[], prefix = "v"): Map<string, Float32Array> {
  const byId = new Map<string, Float32Array>();
  vectors.forEach((v, i) => {
    index.add(`${prefix}${i}`, v);
    byId.set(`${prefix}${i}`, v);
  });
  return byId;
}

describe.each(["wasm-simd", "js"] as const)("vector index, %s kernel", (kernel) => {
  it("returns exact results, best first, for small sets", () => {
    const g = generator(1);
    const index = createVectorIndex({ dimensions: 40, maxEntries: 1000, kernel });
    const vectors = fill(index, Array.from({ length: 300 }, () => Float32Array.from({ length: 40 }, g.gaussian)));
    for (let q = 0; q < 20; q++) {
      const query = Float32Array.from({ length: 40 }, g.gaussian);
      const got = index.search(query, 5);
      const want = bruteForce(vectors, query, 5);
      expect(got.map((m) => m.id)).toEqual(want.map((m) => m.id));
      got.forEach((m, i) => expect(m.similarity).toBeCloseTo(want[i].similarity, 5));
    }
  });

  it("finds the same neighbours through the graph as by exact search (HNSW path)", () => {
    const g = generator(2);
    const index = createVectorIndex({ dimensions: 64, maxEntries: 10_000, kernel });
    const data = g.clustered(2500, 64, 100);
    const vectors = fill(index, data);
    const queries = Array.from({ length: 100 }, () => g.near(data[Math.floor(g.random() * data.length)], 0.35));
    expect(recallAt1(index, vectors, queries)).toBeGreaterThanOrEqual(0.95);
  });
});

describe("vector index", () => {
  it("stores vectors contiguously and takes dot products with WebAssembly SIMD, as the JavaScript kernel does", () => {
    const g = generator(7);
    const simd = createVectorStore({ length: 40, capacity: 4, maxCapacity: 5000 });
    const js = createVectorStore({ length: 40, capacity: 4, maxCapacity: 5000, kernel: "js" });
    expect([simd.kernel, js.kernel, simd.stride]).toEqual(["wasm-simd", "js", 48]);
    const records = Array.from({ length: 5 }, () => Float32Array.from({ length: 40 }, g.gaussian));
    for (const store of [simd, js]) records.forEach((r, i) => store.data.set(r, store.offset(i - 1)));
    simd.grow(4000); // past one 64 KiB page: the memory grows in place, the records stay
    js.grow(4000);
    for (let a = -1; a < 4; a++) {
      for (let b = -1; b < 4; b++) {
        let want = 0;
        for (let i = 0; i < 40; i++) want += records[a + 1][i] * records[b + 1][i];
        expect(simd.dot(a, b)).toBeCloseTo(want, 4);
        expect(js.dot(a, b)).toBeCloseTo(want, 4);
      }
    }
  });

  it("reaches recall@1 >= 0.95 on 5,000 clustered 256-dimension vectors", () => {
    const g = generator(3);
    const index = createVectorIndex({ dimensions: 256, maxEntries: 5000 });
    const data = g.clustered(5000, 256, 250);
    const vectors = fill(index, data);
    const paraphrases = Array.from({ length: 200 }, () => g.near(data[Math.floor(g.random() * data.length)], 0.35));
    expect(recallAt1(index, vectors, paraphrases)).toBeGreaterThanOrEqual(0.95);
    const novel = g.clustered(200, 256, 250); // other centres: far from everything stored
    expect(recallAt1(index, vectors, novel)).toBeGreaterThanOrEqual(0.9);
  });

  it("searches a projection and re-ranks in full precision when graphDimensions < dimensions", () => {
    const g = generator(4);
    const index = createVectorIndex({ dimensions: 1000, maxEntries: 5000, graphDimensions: 64 });
    const data = g.clustered(2500, 1000, 100);
    const vectors = fill(index, data);
    const queries = Array.from({ length: 100 }, () => g.near(data[Math.floor(g.random() * data.length)], 0.35));
    expect(recallAt1(index, vectors, queries)).toBeGreaterThanOrEqual(0.95);
    for (const q of queries.slice(0, 10)) {
      for (const match of index.search(q, 3)) expect(match.similarity).toBeCloseTo(cosine(vectors.get(match.id) as Float32Array, q), 5);
    }
  });

  it("reports cosine similarity of the raw vectors, whatever their scale", () => {
    const index = createVectorIndex({ dimensions: 3, maxEntries: 10 });
    index.add("x", [2, 0, 0]);
    index.add("xy", [5, 5, 0]);
    index.add("-x", [-0.5, 0, 0]);
    expect(index.search([3, 0, 0], 3)).toEqual([
      { id: "x", similarity: 1 },
      { id: "xy", similarity: expect.closeTo(Math.SQRT1_2, 6) },
      { id: "-x", similarity: -1 },
    ]);
    expect(index.search([0, 0, 1], 3).map((m) => m.similarity)).toEqual([0, 0, 0].map(() => expect.closeTo(0, 6)));
    expect(index.search([1, 2, 3], 10)).toHaveLength(3);
    expect(index.search([1, 2, 3], 0)).toEqual([]);
  });

  it("never returns removed ids, and shrinks size and then bytes", () => {
    const g = generator(5);
    const index = createVectorIndex({ dimensions: 32, maxEntries: 20_000 });
    const data = g.clustered(6000, 32, 60);
    const vectors = fill(index, data);
    const fullBytes = index.bytes;

    expect(index.remove("v0")).toBe(true);
    expect(index.remove("v0")).toBe(false);
    expect(index.remove("never-added")).toBe(false);
    expect(index.size).toBe(5999);
    expect(index.search(data[0], 5).map((m) => m.id)).not.toContain("v0");

    // Remove every other entry through the graph path, then check nothing removed comes back.
    for (let i = 2; i < 6000; i += 2) {
      index.remove(`v${i}`);
      vectors.delete(`v${i}`);
    }
    vectors.delete("v0");
    expect(index.size).toBe(3000);
    for (let i = 0; i < 6000; i += 37) {
      for (const match of index.search(data[i], 10)) expect(vectors.has(match.id)).toBe(true);
    }
    const queries = Array.from({ length: 100 }, (_, i) => g.near(data[i * 2 + 1], 0.35));
    expect(recallAt1(index, vectors, queries)).toBeGreaterThanOrEqual(0.95);

    // Under a quarter of the slots in use: the buffers are compacted and bytes drop.
    for (let i = 1; i < 4800; i += 2) {
      index.remove(`v${i}`);
      vectors.delete(`v${i}`);
    }
    expect(index.size).toBe(600);
    expect(index.bytes).toBeLessThan(fullBytes / 3);
    for (const q of queries.slice(0, 20)) expect(index.search(q, 3)).toEqual(bruteForce(vectors, q, 3).map((m) => ({ id: m.id, similarity: expect.closeTo(m.similarity, 5) })));
    for (const id of vectors.keys()) index.remove(id);
    expect(index.size).toBe(0);
    expect(index.search(data[1], 3)).toEqual([]);
    index.add("again", data[1]);
    expect(index.search(data[1], 3)).toEqual([{ id: "again", similarity: expect.closeTo(1, 6) }]);
  });

  it("stays small while it holds few entries (the cache keeps one index per partition)", () => {
    const index = createVectorIndex({ dimensions: 1536, maxEntries: 100_000 });
    index.add("a", Float32Array.from({ length: 1536 }, (_, i) => (i % 7) - 3));
    expect(index.bytes).toBeLessThan(1_000_000);
    expect(index.search(Float32Array.from({ length: 1536 }, (_, i) => (i % 7) - 3), 1)).toEqual([{ id: "a", similarity: expect.closeTo(1, 6) }]);
  });

  it("replaces an entry added again under the same id", () => {
    const index = createVectorIndex({ dimensions: 2, maxEntries: 10 });
    index.add("a", [1, 0]);
    index.add("b", [0, 1]);
    index.add("a", [-1, 0]);
    expect(index.size).toBe(2);
    expect(index.search([1, 0], 2)).toEqual([
      { id: "b", similarity: expect.closeTo(0, 6) },
      { id: "a", similarity: -1 },
    ]);
  });

  it("evicts the oldest entry past maxEntries (a replaced entry counts as new)", () => {
    const index = createVectorIndex({ dimensions: 2, maxEntries: 3 });
    index.add("a", [1, 0]);
    index.add("b", [1, 1]);
    index.add("c", [0, 1]);
    index.add("d", [-1, 1]);
    expect(index.size).toBe(3);
    expect(index.search([1, 0], 3).map((m) => m.id).sort()).toEqual(["b", "c", "d"]);
    index.add("b", [1, 1]);
    index.add("e", [-1, 0]);
    expect(index.search([1, 0], 3).map((m) => m.id).sort()).toEqual(["b", "d", "e"]);
  });

  it("keeps recall while a full index evicts through the graph", () => {
    const g = generator(6);
    const index = createVectorIndex({ dimensions: 48, maxEntries: 2500 });
    const data = g.clustered(6000, 48, 120);
    fill(index, data);
    expect(index.size).toBe(2500);
    const kept = new Map<string, Float32Array>(data.slice(3500).map((v, i) => [`v${i + 3500}`, v]));
    for (let i = 0; i < 3500; i += 50) for (const match of index.search(data[i], 5)) expect(kept.has(match.id)).toBe(true);
    const queries = Array.from({ length: 100 }, () => g.near(data[3500 + Math.floor(g.random() * 2500)], 0.35));
    expect(recallAt1(index, kept, queries)).toBeGreaterThanOrEqual(0.95);
  });

  it("throws a clear error on a dimension mismatch or a vector without direction", () => {
    const index = createVectorIndex({ dimensions: 4, maxEntries: 10 });
    expect(() => index.add("a", [1, 2, 3])).toThrow("vector has 3 dimensions; this index holds 4");
    expect(() => index.search(new Float32Array(5), 1)).toThrow("vector has 5 dimensions; this index holds 4");
    expect(() => index.add("a", [0, 0, 0, 0])).toThrow(/non-zero/);
    expect(() => index.add("a", [Number.NaN, 0, 0, 1])).toThrow(/finite/);
    expect(index.size).toBe(0);
    expect(() => createVectorIndex({ dimensions: 0, maxEntries: 10 })).toThrow(/dimensions/);
    expect(() => createVectorIndex({ dimensions: 8, maxEntries: 10, graphDimensions: 9 })).toThrow(/graphDimensions/);
  });
});
