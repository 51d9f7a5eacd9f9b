/**
 * A binary min-heap of (key, value) pairs in typed arrays: the ANN search
 * keeps two per index and clears them between queries, so a search
 * allocates nothing once they have grown to size. For a max-heap, push
 * negated keys.
 */
export class TypedHeap {
  size = 0;
  private keys: Float64Array;
  private values: Int32Array;

  constructor(capacity = 64) {
    this.keys = new Float64Array(capacity);
    this.values = new Int32Array(capacity);
  }

  clear(): void {
    this.size = 0;
  }

  /** The smallest key; only when size > 0. */
  topKey(): number {
    return this.keys[0];
  }

  /** The value of the smallest key; only when size > 0. */
  topValue(): number {
    return this.values[0];
  }

  push(key: number, value: number): void {
    if (this.size === this.keys.length) this.grow();
    const keys = this.keys;
    const values = this.values;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent] <= key) break;
      keys[i] = keys[parent];
      values[i] = values[parent];
      i = parent;
    }
    keys[i] = key;
    values[i] = value;
  }

  /** Removes the smallest; read it first with topKey/topValue. */
  pop(): void {
    const keys = this.keys;
    const values = this.values;
    const n = --this.size;
    if (n === 0) return;
    const key = keys[n];
    const value = values[n];
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && keys[child + 1] < keys[child]) child++;
      if (keys[child] >= key) break;
      keys[i] = keys[child];
      values[i] = values[child];
      i = child;
    }
    keys[i] = key;
    values[i] = value;
  }

  private grow(): void {
    const keys = new Float64Array(this.keys.length * 2);
    const values = new Int32Array(this.values.length * 2);
    keys.set(this.keys);
    values.set(this.values);
    this.keys = keys;
    this.values = values;
  }
}
