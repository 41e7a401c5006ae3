// The memory driver's job buffer: first in, first out across its compactions, with pushes and shifts interleaved.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Fifo } from '../../src/jobs/fifo.js';

describe('Fifo', () => {
  it('gives items back in push order across compactions, interleaved with pushes', () => {
    const fifo = new Fifo<number>();
    const taken: number[] = [];
    let next = 0;
    // bursts of pushes and shifts of varying sizes, so compactions happen at many fill levels
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < (round * 37) % 500; i++) fifo.push(next++);
      for (let i = 0; i < (round * 53) % 450 && fifo.length > 0; i++) taken.push(fifo.shift()!);
    }
    while (fifo.length > 0) taken.push(fifo.shift()!);
    assert.equal(taken.length, next);
    assert.ok(
      taken.every((value, i) => value === i),
      'every item once, in push order',
    );
    assert.equal(fifo.shift(), undefined);
  });

  it('counts what it holds; clear() empties it', () => {
    const fifo = new Fifo<string>();
    for (let i = 0; i < 5000; i++) fifo.push(`j${i}`);
    for (let i = 0; i < 3000; i++) fifo.shift();
    assert.equal(fifo.length, 2000);
    assert.equal(fifo.shift(), 'j3000');
    fifo.clear();
    assert.equal(fifo.length, 0);
    assert.equal(fifo.shift(), undefined);
    fifo.push('again');
    assert.equal(fifo.shift(), 'again');
  });
});
