import { afterEach, describe, expect, it } from 'vitest';
import { inlineDiffer, WorkerDiffer } from '../../compare/differ.js';
import { jsonText } from '../../definition/json-text.js';

const opened: WorkerDiffer[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((d) => d.close()));
});

function workerDiffer(): WorkerDiffer {
  const differ = new WorkerDiffer();
  opened.push(differ);
  return differ;
}

describe('WorkerDiffer', () => {
  it('diffs on its worker thread: equal answers, and every difference of unequal ones', async () => {
    const differ = workerDiffer();
    const legacy = { id: 7, balance: { ledger: '150.0000' }, items: [{ a: 1 }, { a: 2 }] };
    const [same, differing] = await Promise.all([
      differ.diff(legacy, jsonText(JSON.stringify(legacy))),
      differ.diff(legacy, jsonText('{"id":7,"balance":{"ledger":"149.0000"},"items":[{"a":1}]}')),
    ]);
    // Still on the worker after answering: nothing fell back to this thread.
    expect(differ.offThread).toBe(true);
    expect(same).toEqual([]);
    expect(differing).toEqual([
      { path: 'balance.ledger', kind: 'changed', legacy: '150.0000', readModel: '149.0000' },
      { path: 'items[1]', kind: 'missing', legacy: { a: 2 } },
    ]);
  });

  it('settles equal texts on the calling thread, without a round trip to the worker', async () => {
    const differ = workerDiffer();
    const text = '{"id":7,"items":[1,2,3]}';
    let answer: unknown = null;
    void differ.diff(jsonText(text), jsonText(text)).then((differences) => (answer = differences));
    // A worker's answer needs a turn of the event loop at least; microtasks alone do not bring it.
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(answer).toEqual([]);
    expect(differ.offThread).toBe(true);
  });

  it('compares what the client gets: key order and undefined fields do not differ', async () => {
    const differ = workerDiffer();
    expect(await differ.diff({ a: 1, b: 2, c: undefined }, jsonText('{"b":2,"a":1}'))).toEqual([]);
  });

  it('answers a batch larger than one turn of the event loop, in the right order', async () => {
    const differ = workerDiffer();
    const answers = await Promise.all(
      Array.from({ length: 500 }, (_, i) => differ.diff({ n: i }, jsonText(`{"n":${i % 2 === 0 ? i : -i}}`))),
    );
    answers.forEach((differences, i) => {
      expect(differences).toEqual(
        i % 2 === 0 || i === 0 ? [] : [{ path: 'n', kind: 'changed', legacy: i, readModel: -i }],
      );
    });
    expect(differ.offThread).toBe(true);
  });

  it('refuses text that is not JSON instead of calling it equal', async () => {
    const differ = workerDiffer();
    await expect(differ.diff({ a: 1 }, jsonText('{"a":'))).rejects.toThrow(/cannot compare the answers/);
  });

  it('diffs on the calling thread after close, with the same results', async () => {
    const differ = workerDiffer();
    await differ.close();
    expect(differ.offThread).toBe(false);
    expect(await differ.diff({ a: 1 }, jsonText('{"a":2}'))).toEqual([
      { path: 'a', kind: 'changed', legacy: 1, readModel: 2 },
    ]);
    expect(await inlineDiffer.diff({ a: 1 }, { a: 2 })).toEqual([
      { path: 'a', kind: 'changed', legacy: 1, readModel: 2 },
    ]);
  });
});
