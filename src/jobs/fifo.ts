// A first in, first out list whose shift() costs the same at any length: Array.prototype.shift moves every element
// once the array is large (V8 cannot trim arrays in large-object space), which made draining a memory pipeline of
// 30,000 jobs quadratic (docs/benchmarks.md, "Jobs throughput").

export class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined; // let it go now, not at the next compaction
    // compact once the taken half outweighs the rest: each element moves O(1) times on average
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
