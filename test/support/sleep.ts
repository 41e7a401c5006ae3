// The tests' one sleep: a pause on a real timer, and the bounded poll built on it.

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wait until `predicate` holds, checking every `everyMs` at most `tries` times; throws naming `what` if it never does. */
export async function until(predicate: () => boolean, what: string, { tries = 2_000, everyMs = 5 } = {}): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (predicate()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}
