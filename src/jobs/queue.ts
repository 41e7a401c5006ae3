// The jobs plugin's one priority queue for every pipeline (docs/jobs.md §4.1): lowest priority number first, equal
// priorities first in, first out (RoadRunner's heap leaves ties unordered), at most `pipeline_size` jobs. Drivers
// insert; the pollers take. close() wakes every waiting poller, so a stop never waits for an idle one (RR #2194).
import type { DeliveredJob, JobQueue } from './driver.js';

interface Entry {
  job: DeliveredJob;
  priority: number;
  /** insertion order: the tie-breaker that makes equal priorities FIFO */
  seq: number;
}

export class PriorityJobQueue implements JobQueue {
  private heap: Entry[] = [];
  private seq = 0;
  private closed = false;
  /** pollers waiting for a job */
  private takers: Array<(job: DeliveredJob | null) => void> = [];
  /** drivers waiting for room (the queue is at capacity) */
  private inserters: Array<() => void> = [];

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.heap.length;
  }

  async insert(job: DeliveredJob): Promise<void> {
    while (this.heap.length >= this.capacity && !this.closed) await new Promise<void>((resolve) => this.inserters.push(resolve));
    const taker = this.takers.shift();
    if (taker && !this.closed) return taker(job); // a poller is waiting, so the queue is empty: nothing to order
    this.push({ job, priority: job.item.priority, seq: this.seq++ });
  }

  /** The next job, waiting while there is none; null once the queue is closed. */
  take(): Promise<DeliveredJob | null> {
    if (this.closed) return Promise.resolve(null);
    const entry = this.pop();
    if (entry) return Promise.resolve(entry.job);
    return new Promise((resolve) => this.takers.push(resolve));
  }

  removePipeline(pipeline: string): DeliveredJob[] {
    const removed = this.heap.filter((e) => e.job.item.pipeline === pipeline);
    if (removed.length === 0) return [];
    const kept = this.heap.filter((e) => e.job.item.pipeline !== pipeline);
    this.heap = [];
    for (const entry of kept) this.push(entry);
    this.wakeInserters();
    return removed.sort(compare).map((e) => e.job);
  }

  /** No more takes: waiting pollers get null at once; jobs left inside stay for removePipeline. */
  close(): void {
    this.closed = true;
    for (const taker of this.takers.splice(0)) taker(null);
    this.wakeInserters();
  }

  private wakeInserters(): void {
    for (const wake of this.inserters.splice(0)) wake();
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (compare(heap[parent]!, entry) <= 0) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): Entry | undefined {
    const heap = this.heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && compare(heap[right]!, heap[left]!) < 0 ? right : left;
        if (compare(last, heap[child]!) <= 0) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    if (this.inserters.length > 0) this.inserters.shift()!();
    return top;
  }
}

function compare(a: Entry, b: Entry): number {
  return a.priority - b.priority || a.seq - b.seq;
}
