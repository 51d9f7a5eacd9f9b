/**
 * A random projection to fewer dimensions that keeps cosine similarity
 * approximately (Johnson–Lindenstrauss): the subsampled randomised Hadamard
 * transform (random signs, a fast Walsh–Hadamard transform, then `length`
 * coordinates chosen at random; Ailon & Chazelle 2009, Tropp 2011). It costs
 * O(n log n) per vector, where a dense Gaussian matrix would cost
 * length × dimensions multiply-adds (~400 k for 256 × 1,536).
 *
 * The ANN graph is built and searched on these short vectors; the full
 * vectors re-rank the candidates, so the approximation never reaches the
 * reported similarity.
 */
export interface Projection {
  /** Floats out. */
  readonly length: number;
  /** Projects `dimensions` floats at src[srcOffset] to `length` floats at dst[dstOffset], normalised to unit length. */
  project(src: Float32Array, srcOffset: number, dst: Float32Array, dstOffset: number): void;
}

/** `random` returns uniform numbers in [0, 1); a seeded source makes the projection reproducible. */
export function createProjection(dimensions: number, length: number, random: () => number): Projection {
  let n = 1;
  while (n < dimensions) n *= 2;
  if (length > n) throw new RangeError(`projection length ${length} exceeds ${n}`);
  const signs = new Float64Array(n).map(() => (random() < 0.5 ? -1 : 1));
  // Partial Fisher–Yates: `length` distinct coordinates of the transform.
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < length; i++) {
    const j = i + Math.floor(random() * (n - i));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const picks = order.slice(0, length);
  const work = new Float64Array(n);

  return {
    length,
    project(src, srcOffset, dst, dstOffset) {
      for (let i = 0; i < dimensions; i++) work[i] = src[srcOffset + i] * signs[i];
      work.fill(0, dimensions);
      for (let h = 1; h < n; h *= 2) {
        for (let i = 0; i < n; i += 2 * h) {
          for (let j = i; j < i + h; j++) {
            const a = work[j];
            const b = work[j + h];
            work[j] = a + b;
            work[j + h] = a - b;
          }
        }
      }
      let norm = 0;
      for (let i = 0; i < length; i++) norm += work[picks[i]] * work[picks[i]];
      const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (let i = 0; i < length; i++) dst[dstOffset + i] = work[picks[i]] * scale;
    },
  };
}
