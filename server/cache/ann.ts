/**
 * The semantic cache's in-process approximate-nearest-neighbour index:
 * cosine similarity over embeddings, an HNSW graph (ann-graph.ts) with eager
 * deletion, bounded by entry count with oldest-first eviction.
 *
 * Vectors are normalised and kept in full precision in one contiguous store
 * (ann-store.ts). For long vectors (more than 512 dimensions by default) the
 * graph is built and walked on a 256-dimension random projection
 * (ann-projection.ts), ~6x cheaper per distance, and the candidates it finds
 * are re-ranked with the full vectors: reported similarities are always
 * exact cosines. Below a small size the index scans exactly instead.
 *
 * Synchronous and single-threaded, like the rest of the event loop: no call
 * yields, so a search never sees a half-applied add or remove.
 */
import { HnswGraph } from "./ann-graph.ts";
import { TypedHeap } from "./ann-heap.ts";
import { createProjection, type Projection } from "./ann-projection.ts";
import { createVectorStore, type VectorStore } from "./ann-store.ts";

export interface Match {
  id: string;
  /** Cosine similarity in [-1, 1]. */
  similarity: number;
}

export interface VectorIndex {
  readonly dimensions: number;
  readonly size: number;
  /** Approximate bytes held (vectors + graph + ids), counting the capacity grown into. */
  readonly bytes: number;
  /** Adds or replaces (a replaced entry counts as newest). Vectors are normalised internally (cosine). Past maxEntries the oldest entry is removed first. Throws on a wrong length or a zero or non-finite vector. */
  add(id: string, vector: Float32Array | number[]): void;
  /** False when the id is not held. */
  remove(id: string): boolean;
  /** Best k matches, best first; never a removed id. */
  search(vector: Float32Array | number[], k: number): Match[];
}

export interface VectorIndexOptions {
  dimensions: number;
  maxEntries: number;
  /** Graph links per node on the upper layers (twice that on the bottom layer). Default 16. */
  m?: number;
  /** Candidate list size while linking a new entry: build time against graph quality. Default 100. */
  efConstruction?: number;
  /** Candidate list size while searching: latency against recall. Default 64 (at least k). */
  efSearch?: number;
  /** Dimensions the graph works on; below `dimensions` a random projection is used and results are re-ranked in full. Default 256 when dimensions > 512, else dimensions. */
  graphDimensions?: number;
  /** Distance kernel; "js" where WebAssembly is not wanted. Default "wasm-simd" (falls back to "js" if unavailable). */
  kernel?: "wasm-simd" | "js";
  /** Seeds the level draws and the projection, for reproducible graphs. */
  seed?: number;
}

/** Slots allocated up front: small, since the cache keeps one index per partition and most stay small. */
const INITIAL_CAPACITY = 64;
/** Exact scan while size × stride stays under this many floats (~0.2 ms with the SIMD kernel). */
const EXACT_SCAN_FLOATS = 1 << 19;
const EXACT_SCAN_MAX = 2048;

/** Checks the options once and returns a ready, empty index. */
export function createVectorIndex(options: VectorIndexOptions): VectorIndex {
  const int = (name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`createVectorIndex: ${name} must be an integer in [${min}, ${max}], got ${value}`);
    return value;
  };
  const dimensions = int("dimensions", options.dimensions, 1, 65_536);
  return new Index({
    dimensions,
    maxEntries: int("maxEntries", options.maxEntries, 1, 2 ** 31 - 2),
    m: int("m", options.m ?? 16, 2, 64),
    efConstruction: int("efConstruction", options.efConstruction ?? 100, 1),
    efSearch: int("efSearch", options.efSearch ?? 64, 1),
    graphDimensions: int("graphDimensions", options.graphDimensions ?? (dimensions > 512 ? 256 : dimensions), 1, dimensions),
    kernel: options.kernel === "js" ? "js" : "wasm-simd",
    seed: options.seed ?? 0x5eed,
  });
}

/** mulberry32: a small seeded PRNG, enough for level draws and projections. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Owns slots: which id is where, the vectors, eviction order, growth and compaction; the graph links the slots. */
class Index implements VectorIndex {
  readonly dimensions: number;
  private readonly maxEntries: number;
  private readonly efSearch: number;
  private readonly kernel: "wasm-simd" | "js";
  private readonly projection: Projection | undefined;
  private readonly exactLimit: number;
  private readonly graph: HnswGraph;
  /** Normalised full vectors; record -1 is the query. */
  private full: VectorStore;
  private capacity: number;
  private ids: (string | undefined)[] = [];
  /** id -> slot, in insertion order: the first key is the oldest entry. */
  private readonly slots = new Map<string, number>();
  private free: number[] = [];
  /** Slots below this have been used. */
  private used = 0;
  private idBytes = 0;
  private readonly top = new TypedHeap();

  constructor(o: Required<VectorIndexOptions>) {
    this.dimensions = o.dimensions;
    this.maxEntries = o.maxEntries;
    this.efSearch = o.efSearch;
    this.kernel = o.kernel;
    const random = seededRandom(o.seed);
    this.projection = o.graphDimensions < o.dimensions ? createProjection(o.dimensions, o.graphDimensions, random) : undefined;
    this.capacity = Math.min(INITIAL_CAPACITY, o.maxEntries);
    this.full = this.newStore(o.dimensions, this.capacity);
    const vectors = this.projection ? this.newStore(this.projection.length, this.capacity) : this.full;
    this.graph = new HnswGraph({ m: o.m, efConstruction: o.efConstruction, capacity: this.capacity, random }, vectors);
    this.exactLimit = Math.min(EXACT_SCAN_MAX, Math.floor(EXACT_SCAN_FLOATS / this.full.stride));
  }

  get size(): number {
    return this.slots.size;
  }

  get bytes(): number {
    const projected = this.graph.vectors === this.full ? 0 : this.graph.vectors.bytes;
    return this.full.bytes + projected + this.graph.bytes + 8 * this.capacity + this.idBytes;
  }

  add(id: string, vector: Float32Array | number[]): void {
    const norm = this.norm(vector);
    const existing = this.slots.get(id);
    if (existing !== undefined) this.release(existing, id);
    else if (this.slots.size >= this.maxEntries) {
      const [oldest, slot] = this.slots.entries().next().value as [string, number];
      this.release(slot, oldest);
    }
    const slot = this.allocate();
    const data = this.full.data;
    const at = this.full.offset(slot);
    for (let i = 0; i < this.dimensions; i++) data[at + i] = vector[i] / norm;
    this.projection?.project(data, at, this.graph.vectors.data, this.graph.vectors.offset(slot));
    this.graph.insert(slot);
    this.ids[slot] = id;
    this.slots.set(id, slot);
    this.idBytes += idCost(id);
  }

  remove(id: string): boolean {
    const slot = this.slots.get(id);
    if (slot === undefined) return false;
    this.release(slot, id);
    if (this.capacity > INITIAL_CAPACITY && this.slots.size * 4 < this.capacity) this.compact();
    return true;
  }

  search(vector: Float32Array | number[], k: number): Match[] {
    const norm = this.norm(vector);
    k = Math.min(Math.floor(k), this.slots.size);
    if (!(k > 0)) return [];
    const data = this.full.data;
    const at = this.full.offset(-1);
    for (let i = 0; i < this.dimensions; i++) data[at + i] = vector[i] / norm;
    if (this.slots.size <= this.exactLimit) return this.scan(k);

    this.projection?.project(data, at, this.graph.vectors.data, this.graph.vectors.offset(-1));
    const count = this.graph.search(-1, Math.max(this.efSearch, k));
    const slots = this.graph.sortedIds;
    const sims = this.graph.sortedDists;
    if (!this.projection) {
      for (let i = 0; i < Math.min(k, count); i++) sims[i] = 1 - sims[i];
    } else {
      // Re-rank in full precision: insertion-sort by exact similarity, best first (count is ~efSearch).
      for (let i = 0; i < count; i++) {
        const slot = slots[i];
        const sim = this.full.dot(-1, slot);
        let j = i;
        for (; j > 0 && sims[j - 1] < sim; j--) {
          slots[j] = slots[j - 1];
          sims[j] = sims[j - 1];
        }
        slots[j] = slot;
        sims[j] = sim;
      }
    }
    const out: Match[] = new Array(Math.min(k, count));
    for (let i = 0; i < out.length; i++) out[i] = { id: this.ids[slots[i]] as string, similarity: clamp(sims[i]) };
    return out;
  }

  /** The vector's Euclidean norm, after checking its length and values. */
  private norm(vector: Float32Array | number[]): number {
    if (vector.length !== this.dimensions) throw new Error(`vector has ${vector.length} dimensions; this index holds ${this.dimensions}`);
    let sum = 0;
    for (let i = 0; i < vector.length; i++) sum += vector[i] * vector[i];
    if (!Number.isFinite(sum) || sum === 0) throw new Error("vector must be finite and non-zero to have a cosine similarity");
    return Math.sqrt(sum);
  }

  /** Exact top-k over every live entry. */
  private scan(k: number): Match[] {
    const heap = this.top;
    heap.clear();
    const live = this.graph.live;
    for (let slot = 0; slot < this.used; slot++) {
      if (!live[slot]) continue;
      const sim = this.full.dot(-1, slot);
      if (heap.size < k) heap.push(sim, slot);
      else if (sim > heap.topKey()) {
        heap.pop();
        heap.push(sim, slot);
      }
    }
    const out: Match[] = new Array(heap.size);
    for (let i = heap.size - 1; i >= 0; i--) {
      out[i] = { id: this.ids[heap.topValue()] as string, similarity: clamp(heap.topKey()) };
      heap.pop();
    }
    return out;
  }

  private release(slot: number, id: string): void {
    this.graph.remove(slot);
    this.slots.delete(id);
    this.idBytes -= idCost(id);
    this.ids[slot] = undefined;
    this.free.push(slot);
  }

  private newStore(length: number, capacity: number): VectorStore {
    return createVectorStore({ length, capacity, maxCapacity: this.maxEntries, kernel: this.kernel });
  }

  private allocate(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.used === this.capacity) {
      const capacity = Math.min(this.maxEntries, Math.max(this.capacity + INITIAL_CAPACITY, Math.ceil(this.capacity * 1.25))); // bytes counts at most 25 % unused
      this.full.grow(capacity); // in place for WebAssembly memory
      if (this.graph.vectors !== this.full) this.graph.vectors.grow(capacity);
      this.graph.resize(capacity);
      this.capacity = capacity;
    }
    return this.used++;
  }

  /** After mass removal: moves live entries to the front of new, smaller stores, so memory is returned. */
  private compact(): void {
    const capacity = Math.min(this.maxEntries, Math.max(INITIAL_CAPACITY, this.slots.size * 2));
    const remap = new Int32Array(this.used).fill(-1);
    let next = 0;
    for (let slot = 0; slot < this.used; slot++) if (this.graph.live[slot]) remap[slot] = next++;
    const copy = (from: VectorStore, to: VectorStore): VectorStore => {
      for (let slot = 0; slot < this.used; slot++) {
        if (remap[slot] >= 0) to.data.set(from.data.subarray(from.offset(slot), from.offset(slot) + from.stride), to.offset(remap[slot]));
      }
      return to;
    };
    const full = copy(this.full, this.newStore(this.dimensions, capacity));
    const projected = this.projection ? copy(this.graph.vectors, this.newStore(this.projection.length, capacity)) : full;
    const ids: (string | undefined)[] = [];
    for (let slot = 0; slot < this.used; slot++) {
      const id = this.ids[slot];
      if (remap[slot] < 0 || id === undefined) continue;
      ids[remap[slot]] = id;
      this.slots.set(id, remap[slot]); // an existing key keeps its place in the order
    }
    this.graph.compact(remap, capacity);
    this.graph.vectors = projected;
    this.full = full;
    this.ids = ids;
    this.free = [];
    this.used = next;
    this.capacity = capacity;
  }
}

function clamp(sim: number): number {
  return sim > 1 ? 1 : sim < -1 ? -1 : sim;
}

/** A string's heap cost plus its Map entry, roughly (V8: header + 1 or 2 bytes a character; ~3 words an entry). */
function idCost(id: string): number {
  return 48 + 2 * id.length;
}
