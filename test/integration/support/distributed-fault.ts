import { afterAll, beforeAll } from 'vitest';
import type { RunningTranslator } from '../../../cli/distributed.js';
import { connectReachable, waitFor } from './debezium-bank.js';
import { pgReachable } from './postgres.js';
import { ShopDistributed, type ShopOverrides, stackManaged } from './shop-distributed.js';

/**
 * What the distributed shop's fault tests share: whether the services they need run (and were
 * started by stack.sh, so a test may restart or freeze one), the harness set up before and
 * closed after the file, and the pipeline started up to its first snapshot events.
 */

/** Connect, PostgreSQL and a stack.sh-managed stack; says why a test file skips when not. */
export async function faultStackReady(test: string): Promise<boolean> {
  const ready = (await connectReachable()) && (await pgReachable()) && (await stackManaged());
  if (!ready)
    console.warn(
      `${test}: needs the stack started by stack.sh (STACK_HOME names its folder when another checkout started it) and PostgreSQL; skipping`,
    );
  return ready;
}

/** A shop harness set up in beforeAll and closed in afterAll of the calling file. */
export function shopForFaults(tag: string, overrides: ShopOverrides = {}): ShopDistributed {
  const shop = new ShopDistributed(tag);
  beforeAll(async () => {
    await shop.setup(overrides);
  });
  afterAll(async () => {
    await shop.close();
  });
  return shop;
}

/** Translator and one projector per store, running once the snapshot reaches the domain topics. */
export async function startShopPipeline(shop: ShopDistributed): Promise<RunningTranslator> {
  const translator = await shop.startTranslator();
  await shop.startProjectors();
  await waitFor(
    'the snapshot to reach the domain topics',
    () => translator.source.deliveredCount() > 0,
    60_000,
  );
  return translator;
}
