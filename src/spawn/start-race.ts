// The race every process start runs (exec workers, fork roots and masters, forked workers): wait for a step of the
// start, unless the process exits first or the deadline passes.

export interface StartRace<Exit> {
  /** settles when the process is gone */
  exited: Promise<Exit>;
  timeoutMs: number;
  /** The error when the process exits before the step settled; may wait (for its last output, say). */
  exitError: (exit: Exit) => Error | Promise<Error>;
  timeoutError: () => Error;
}

/**
 * Resolves or rejects as `step` does, unless the process exits first (rejects with `exitError`) or `timeoutMs`
 * passes (rejects with `timeoutError`). Whichever comes first wins; once the process has exited the deadline no longer
 * counts, so a slow `exitError` is not reported as a timeout, and once the race is decided `exitError` is not called.
 */
export function waitForStart<T, Exit>(step: Promise<T>, race: StartRace<Exit>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let decided = false;
    const decide = (settle: () => void): void => {
      if (decided) return;
      decided = true;
      clearTimeout(timer);
      settle();
    };
    const timer = setTimeout(() => decide(() => reject(race.timeoutError())), race.timeoutMs);
    step.then(
      (value) => decide(() => resolve(value)),
      (err: Error) => decide(() => reject(err)),
    );
    void race.exited.then(
      async (exit) => {
        if (decided) return;
        clearTimeout(timer);
        let err: Error;
        try {
          err = await race.exitError(exit);
        } catch (thrown) {
          err = thrown as Error; // building the message failed: still an answer, not a start that hangs
        }
        decide(() => reject(err));
      },
      () => undefined, // an exit promise does not reject; the deadline still answers if one did
    );
  });
}
