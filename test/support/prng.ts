// A seeded PRNG for property and fuzz tests: tiny and deterministic, so a failing seed can be replayed.

/** xorshift32 */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}
