// What every section reader gets besides its own section: the working directory, the CPU count and a place
// to leave start-up warnings.

export interface SectionContext {
  /** Absolute working directory. */
  workDir: string;
  /** Logical CPUs, for num_workers: 0. */
  cpus: number;
  /** Collected into Config.warnings. */
  warnings: string[];
}
