/**
 * The offsets of the records a consumer still holds, per topic-partition, with the lowest one
 * at hand: where that partition may be committed up to. A consumer reads each partition in
 * offset order, so a record is almost always held above every other one of its partition and
 * released roughly in order; the lowest is found by skipping released offsets at the front,
 * which costs O(1) amortised per record however many are held (a scan of everything held on
 * every commit got quadratic when the consumer was far behind).
 */
export class HeldOffsets {
  private readonly partitions = new Map<string, PartitionHeld>();

  hold(topic: string, partition: number, offset: bigint): void {
    const key = keyOf(topic, partition);
    let held = this.partitions.get(key);
    if (held === undefined) {
      held = { queue: [], head: 0, released: new Map() };
      this.partitions.set(key, held);
    }
    const { queue } = held;
    const last = queue[queue.length - 1];
    if (last === undefined || queue.length === held.head || last < offset) {
      queue.push(offset);
      return;
    }
    // Out of order (a partition re-read): keep the live part of the queue sorted.
    let at = queue.length;
    while (at > held.head && (queue[at - 1] as bigint) > offset) at--;
    queue.splice(at, 0, offset);
  }

  release(topic: string, partition: number, offset: bigint): void {
    const held = this.partitions.get(keyOf(topic, partition));
    if (held === undefined) return;
    held.released.set(offset, (held.released.get(offset) ?? 0) + 1);
    this.compact(held);
  }

  /** The lowest offset still held in a partition, or undefined when it holds none. */
  lowest(topic: string, partition: number): bigint | undefined {
    const held = this.partitions.get(keyOf(topic, partition));
    return held === undefined ? undefined : held.queue[held.head];
  }

  clear(): void {
    this.partitions.clear();
  }

  private compact(held: PartitionHeld): void {
    const { queue, released } = held;
    for (let front = queue[held.head]; front !== undefined; front = queue[held.head]) {
      const count = released.get(front);
      if (count === undefined) break;
      if (count === 1) released.delete(front);
      else released.set(front, count - 1);
      held.head++;
    }
    if (held.head === queue.length) {
      queue.length = 0;
      held.head = 0;
      released.clear();
    } else if (held.head > 1024 && held.head * 2 > queue.length) {
      queue.splice(0, held.head);
      held.head = 0;
    }
  }
}

interface PartitionHeld {
  /** Offsets held, ascending from `head` (what lies before it was released). */
  queue: bigint[];
  head: number;
  /** Released offsets not yet at the front of the queue (with how often: a re-read record is held twice). */
  released: Map<bigint, number>;
}

const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`;
