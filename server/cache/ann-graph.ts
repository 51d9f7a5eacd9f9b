/**
 * The HNSW graph (Malkov & Yashunin, https://arxiv.org/abs/1603.09320) over
 * the slots of a vector store: layered neighbour lists in typed arrays,
 * insertion (Algorithms 1, 2 and 4 of the paper), search, and eager deletion
 * with local repair. Distances are 1 − dot product of unit vectors.
 *
 * The owner (ann.ts) decides which slot holds what; this file only links
 * slots. It never allocates per query: the visited set is a generation-
 * stamped Uint32Array and the two heaps are typed and reused.
 */
import { TypedHeap } from "./ann-heap.ts";
import type { VectorStore } from "./ann-store.ts";

const MAX_LEVEL = 15;
/** Estimated object overhead of a small typed array (upper-layer lists). */
const ARRAY_OVERHEAD = 96;

export interface HnswGraphOptions {
  m: number;
  efConstruction: number;
  capacity: number;
  /** Uniform in [0, 1); draws node levels. */
  random: () => number;
}

export class HnswGraph {
  /** The vectors distances are measured on (record -1 is the query); the owner replaces it when compacting. */
  vectors: VectorStore;
  /** 1 for a linked slot. */
  live: Uint8Array;
  /** After search(): the slots found and their distances, nearest first. */
  sortedIds = new Int32Array(128);
  sortedDists = new Float64Array(128);

  private readonly m: number;
  private readonly m0: number;
  /** Bottom-layer list capacity: m0 plus slack, so the pruning heuristic runs once per few back links rather than on each. */
  private readonly cap0: number;
  private readonly efConstruction: number;
  private readonly levelScale: number;
  private readonly random: () => number;
  /** Bottom-layer links, cap0 + 1 ints per slot: [count, ...neighbours]. */
  private links0: Int32Array;
  /** Upper-layer links, (m + 1) ints per layer, for the ~1 in m slots above layer 0. */
  private upper: (Int32Array | undefined)[] = [];
  private levels: Uint8Array;
  private visited: Uint32Array;
  private mark = 0;
  private upperBytes = 0;
  private entry = -1;
  private maxLevel = 0;
  private readonly candidates = new TypedHeap();
  private readonly results = new TypedHeap();
  /** Similarities among a removed node's neighbours, computed once per removal. */
  private readonly pairs: Float64Array;

  constructor(options: HnswGraphOptions, vectors: VectorStore) {
    this.vectors = vectors;
    this.m = options.m;
    this.m0 = 2 * options.m;
    this.cap0 = this.m0 + Math.ceil(this.m0 / 4);
    this.efConstruction = options.efConstruction;
    this.levelScale = 1 / Math.log(options.m);
    this.random = options.random;
    this.links0 = new Int32Array(options.capacity * (this.cap0 + 1));
    this.levels = new Uint8Array(options.capacity);
    this.live = new Uint8Array(options.capacity);
    this.visited = new Uint32Array(options.capacity);
    this.pairs = new Float64Array(this.cap0 * this.cap0);
  }

  /** Bytes of links and per-slot state (not the vectors). */
  get bytes(): number {
    return this.links0.byteLength + this.levels.byteLength + this.live.byteLength + this.visited.byteLength + 8 * this.levels.length + this.upperBytes;
  }

  /** Links a slot whose vector is in place (Algorithm 1). */
  insert(slot: number): void {
    const level = Math.min(MAX_LEVEL, Math.floor(-Math.log(1 - this.random()) * this.levelScale));
    this.levels[slot] = level;
    this.links0[slot * (this.cap0 + 1)] = 0;
    if (level > 0) {
      const links = new Int32Array(level * (this.m + 1));
      this.upper[slot] = links;
      this.upperBytes += links.byteLength + ARRAY_OVERHEAD;
    }
    if (this.entry < 0) {
      this.entry = slot;
      this.maxLevel = level;
      this.live[slot] = 1;
      return;
    }
    let current = this.entry;
    for (let l = this.maxLevel; l > level; l--) current = this.greedy(slot, current, l);
    for (let l = Math.min(level, this.maxLevel); l >= 0; l--) {
      const count = this.searchLayer(slot, current, this.efConstruction, l);
      current = this.sortedIds[0];
      const links = this.linksAt(slot, l);
      const base = this.baseAt(slot, l);
      this.selectNeighbours(count, l === 0 ? this.m0 : this.m, links, base);
      for (let i = 1, n = links[base]; i <= n; i++) this.connect(links[base + i], slot, l);
    }
    this.live[slot] = 1;
    if (level > this.maxLevel) {
      this.maxLevel = level;
      this.entry = slot;
    }
  }

  /**
   * Unlinks a slot. Each neighbour that linked back loses the link and takes
   * instead the nearest of the removed node's other neighbours, so the
   * neighbourhood stays connected. Links from nodes the removed one did not
   * link back to are left dangling: searches skip slots that are not live,
   * and once the slot is reused they lead to its new node (a harmless long link).
   */
  remove(slot: number): void {
    this.live[slot] = 0;
    const level = this.levels[slot];
    for (let l = 0; l <= level; l++) this.repairAround(slot, l);
    if (level > 0) {
      this.upperBytes -= (this.upper[slot] as Int32Array).byteLength + ARRAY_OVERHEAD;
      this.upper[slot] = undefined;
    }
    this.links0[slot * (this.cap0 + 1)] = 0;
    this.levels[slot] = 0;
    if (slot === this.entry) this.chooseEntry();
  }

  /** Finds the ~ef nearest live slots to `query` (a slot, or -1 for the query record) into sortedIds/sortedDists; returns how many. */
  search(query: number, ef: number): number {
    if (this.entry < 0) return 0;
    let current = this.entry;
    for (let l = this.maxLevel; l > 0; l--) current = this.greedy(query, current, l);
    return this.searchLayer(query, current, ef, 0);
  }

  /** Grows per-slot arrays to `capacity` slots. */
  resize(capacity: number): void {
    const grow = <T extends Int32Array | Uint8Array>(from: T, to: T): T => {
      to.set(from.subarray(0, Math.min(from.length, to.length)));
      return to;
    };
    this.links0 = grow(this.links0, new Int32Array(capacity * (this.cap0 + 1)));
    this.levels = grow(this.levels, new Uint8Array(capacity));
    this.live = grow(this.live, new Uint8Array(capacity));
    this.visited = new Uint32Array(capacity);
    this.mark = 0;
  }

  /** Renumbers slots (remap[old] = new, or -1 for a slot not live) into arrays of `capacity` slots. */
  compact(remap: Int32Array, capacity: number): void {
    const stride0 = this.cap0 + 1;
    const links0 = new Int32Array(capacity * stride0);
    const levels = new Uint8Array(capacity);
    const live = new Uint8Array(capacity);
    const upper: (Int32Array | undefined)[] = [];
    const renumber = (src: Int32Array, srcBase: number, dst: Int32Array, dstBase: number): void => {
      let kept = 0;
      for (let i = 1, n = src[srcBase]; i <= n; i++) {
        const target = src[srcBase + i] < remap.length ? remap[src[srcBase + i]] : -1;
        if (target >= 0) dst[dstBase + 1 + kept++] = target;
      }
      dst[dstBase] = kept;
    };
    for (let slot = 0; slot < remap.length; slot++) {
      const to = remap[slot];
      if (to < 0) continue;
      renumber(this.links0, slot * stride0, links0, to * stride0);
      const own = this.upper[slot];
      if (own) {
        for (let l = 0; l < this.levels[slot]; l++) renumber(own, l * (this.m + 1), own, l * (this.m + 1)); // in place: writes trail reads
        upper[to] = own;
      }
      levels[to] = this.levels[slot];
      live[to] = 1;
    }
    this.links0 = links0;
    this.levels = levels;
    this.live = live;
    this.upper = upper;
    this.visited = new Uint32Array(capacity);
    this.mark = 0;
    this.entry = this.entry >= 0 ? remap[this.entry] : -1;
  }

  // ---- internals ---------------------------------------------------------

  private linksAt(slot: number, level: number): Int32Array {
    return level === 0 ? this.links0 : (this.upper[slot] as Int32Array);
  }

  private baseAt(slot: number, level: number): number {
    return level === 0 ? slot * (this.cap0 + 1) : (level - 1) * (this.m + 1);
  }

  /** Whether a link target can be followed on `level`: a freed slot, or one reused by a lower node, cannot. */
  private usable(slot: number, level: number): boolean {
    return this.live[slot] === 1 && this.levels[slot] >= level;
  }

  private nextMark(): number {
    if (this.mark === 0xffff_ffff) {
      this.visited.fill(0);
      this.mark = 0;
    }
    return ++this.mark;
  }

  /** Greedy walk on one layer towards `query`. */
  private greedy(query: number, start: number, level: number): number {
    let current = start;
    let best = this.vectors.dot(query, start);
    for (let moved = true; moved; ) {
      moved = false;
      const links = this.linksAt(current, level);
      const base = this.baseAt(current, level);
      for (let i = 1, n = links[base]; i <= n; i++) {
        const next = links[base + i];
        if (!this.usable(next, level)) continue;
        const sim = this.vectors.dot(query, next);
        if (sim > best) {
          best = sim;
          current = next;
          moved = true;
        }
      }
    }
    return current;
  }

  /** Beam search on one layer (Algorithm 2); the ef nearest go to sortedIds/sortedDists; returns how many. */
  private searchLayer(query: number, start: number, ef: number, level: number): number {
    const { candidates, results, visited, vectors } = this;
    const mark = this.nextMark();
    if (query >= 0) visited[query] = mark;
    visited[start] = mark;
    candidates.clear();
    results.clear(); // a max-heap of distance, through negated keys
    const d0 = 1 - vectors.dot(query, start);
    candidates.push(d0, start);
    results.push(-d0, start);
    while (candidates.size > 0) {
      const dist = candidates.topKey();
      if (results.size >= ef && dist > -results.topKey()) break;
      const current = candidates.topValue();
      candidates.pop();
      const links = this.linksAt(current, level);
      const base = this.baseAt(current, level);
      for (let i = 1, n = links[base]; i <= n; i++) {
        const next = links[base + i];
        if (visited[next] === mark) continue;
        visited[next] = mark;
        if (!this.usable(next, level)) continue;
        const d = 1 - vectors.dot(query, next);
        if (results.size < ef || d < -results.topKey()) {
          candidates.push(d, next);
          results.push(-d, next);
          if (results.size > ef) results.pop();
        }
      }
    }
    const count = results.size;
    this.reserveSorted(count);
    for (let i = count - 1; i >= 0; i--) {
      this.sortedIds[i] = results.topValue();
      this.sortedDists[i] = -results.topKey();
      results.pop();
    }
    return count;
  }

  private reserveSorted(count: number): void {
    if (count <= this.sortedIds.length) return;
    this.sortedIds = new Int32Array(count * 2);
    this.sortedDists = new Float64Array(count * 2);
  }

  /**
   * Keeps, from the `count` sorted candidates, those not nearer to an already
   * kept neighbour than to the base node (Algorithm 4), up to `max`; writes
   * [count, ...slots] at links[base].
   */
  private selectNeighbours(count: number, max: number, links: Int32Array, base: number): void {
    let kept = 0;
    for (let i = 0; i < count && kept < max; i++) {
      const candidate = this.sortedIds[i];
      const dist = this.sortedDists[i];
      let good = true;
      for (let j = 0; j < kept; j++) {
        if (1 - this.vectors.dot(candidate, links[base + 1 + j]) < dist) {
          good = false;
          break;
        }
      }
      if (good) links[base + 1 + kept++] = candidate;
    }
    links[base] = kept;
  }

  /** Adds the back link node -> added; a full list is pruned with the heuristic (to m0 on the bottom layer, leaving slack). */
  private connect(node: number, added: number, level: number): void {
    const links = this.linksAt(node, level);
    const base = this.baseAt(node, level);
    const n = links[base];
    if (n < (level === 0 ? this.cap0 : this.m)) {
      links[base + 1 + n] = added;
      links[base] = n + 1;
      return;
    }
    this.reserveSorted(n + 1);
    const ids = this.sortedIds;
    const dists = this.sortedDists;
    let count = 0;
    const insert = (slot: number, d: number): void => {
      let i = count++;
      for (; i > 0 && dists[i - 1] > d; i--) {
        ids[i] = ids[i - 1];
        dists[i] = dists[i - 1];
      }
      ids[i] = slot;
      dists[i] = d;
    };
    insert(added, 1 - this.vectors.dot(node, added));
    for (let i = 1; i <= n; i++) {
      const other = links[base + i];
      if (this.usable(other, level)) insert(other, 1 - this.vectors.dot(node, other));
    }
    this.selectNeighbours(count, level === 0 ? this.m0 : this.m, links, base);
  }

  private repairAround(slot: number, level: number): void {
    const links = this.linksAt(slot, level);
    const base = this.baseAt(slot, level);
    const n = links[base];
    const pairs = this.pairs;
    pairs.fill(Number.NaN, 0, n * n);
    for (let i = 1; i <= n; i++) {
      const node = links[base + i];
      if (!this.usable(node, level)) continue;
      const own = this.linksAt(node, level);
      const ownBase = this.baseAt(node, level);
      let count = own[ownBase];
      let at = 1;
      while (at <= count && own[ownBase + at] !== slot) at++;
      if (at > count) continue;
      own[ownBase + at] = own[ownBase + count];
      own[ownBase] = --count;
      // Refill from the removed node's neighbours, skipping those already linked.
      const mark = this.nextMark();
      this.visited[node] = mark;
      for (let j = 1; j <= count; j++) this.visited[own[ownBase + j]] = mark;
      let best = -1;
      let bestSim = -Infinity;
      for (let j = 1; j <= n; j++) {
        const other = links[base + j];
        if (this.visited[other] === mark || !this.usable(other, level)) continue;
        const key = (i - 1) * n + (j - 1);
        let sim = pairs[key];
        if (Number.isNaN(sim)) {
          sim = this.vectors.dot(node, other);
          pairs[key] = sim;
          pairs[(j - 1) * n + (i - 1)] = sim;
        }
        if (sim > bestSim) {
          bestSim = sim;
          best = other;
        }
      }
      if (best >= 0) {
        own[ownBase + 1 + count] = best;
        own[ownBase] = count + 1;
      }
    }
  }

  /** After the entry point goes: the highest remaining node (a scan, once per entry-point removal). */
  private chooseEntry(): void {
    let best = -1;
    for (let slot = 0; slot < this.live.length; slot++) {
      if (this.live[slot] && (best < 0 || this.levels[slot] > this.levels[best])) best = slot;
    }
    this.entry = best;
    this.maxLevel = best < 0 ? 0 : this.levels[best];
  }
}
