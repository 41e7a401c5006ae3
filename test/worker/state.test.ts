// canMove, the worker state machine, as a table: every move from every state, written out, so a change to the rules
// shows here as the row it changes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canMove, stateName, WorkerState } from '../../src/worker/state.js';

const S = WorkerState;
/** the columns, in this order */
const TO = [
  S.Inactive,
  S.Ready,
  S.Working,
  S.Invalid,
  S.Stopping,
  S.Stopped,
  S.Destroyed,
  S.MaxJobsReached,
  S.Errored,
  S.IdleTTLReached,
  S.TTLReached,
  S.MaxMemoryReached,
  S.ExecTTLReached,
];

// x: allowed. Ready only from Inactive (started) or Working (a job done); Working only from Ready; nothing leaves
// Stopped but Destroyed, nothing leaves Destroyed; a stopping worker takes no mark of the pool or the supervisor.
// prettier-ignore
const TABLE: Array<[WorkerState, string]> = [
  //                        Ina Rdy Wrk Inv Sng Std Des MJR Err ITR TTR MMR ETR
  [S.Inactive,            ' x   x   .   x   x   x   x   x   x   x   x   x   x'],
  [S.Ready,               ' x   .   x   x   x   x   x   x   x   x   x   x   x'],
  [S.Working,             ' x   x   .   x   x   x   x   x   x   x   x   x   x'],
  [S.Invalid,             ' x   .   .   x   x   x   x   x   x   x   x   x   x'],
  [S.Stopping,            ' .   .   .   x   x   x   .   .   x   .   .   .   .'],
  [S.Stopped,             ' .   .   .   .   .   .   x   .   .   .   .   .   .'],
  [S.Destroyed,           ' .   .   .   .   .   .   .   .   .   .   .   .   .'],
  [S.MaxJobsReached,      ' x   .   .   x   x   x   x   x   x   x   x   x   x'],
  [S.Errored,             ' x   .   .   x   x   x   x   x   x   x   x   x   x'],
  [S.IdleTTLReached,      ' x   .   .   x   x   x   x   x   x   x   x   x   x'],
  [S.TTLReached,          ' x   .   .   x   x   x   x   x   x   x   x   x   x'],
  [S.MaxMemoryReached,    ' x   .   .   x   x   x   x   x   x   x   x   x   x'],
  [S.ExecTTLReached,      ' x   .   .   x   x   x   x   x   x   x   x   x   x'],
];

describe('canMove', () => {
  it('the table covers every state, as a row and as a column', () => {
    const all = Object.values(WorkerState).filter((v): v is WorkerState => typeof v === 'number');
    assert.deepEqual([...TO].sort(), [...all].sort());
    assert.deepEqual(TABLE.map(([from]) => from).sort(), [...all].sort());
  });

  for (const [from, row] of TABLE) {
    it(`from ${stateName(from)}`, () => {
      const expected = row.trim().split(/\s+/);
      assert.equal(expected.length, TO.length, 'one cell per column');
      const wrong = TO.flatMap((to, i) => {
        const allowed = expected[i] === 'x';
        return canMove(from, to) === allowed ? [] : [`${stateName(from)} -> ${stateName(to)}: ${allowed ? 'refused' : 'allowed'}`];
      });
      assert.deepEqual(wrong, []);
    });
  }
});
